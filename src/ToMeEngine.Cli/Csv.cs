using System.Text;

namespace ToMe.Cli;

/// <summary>CSV as RFC 4180 writes it: fields holding a comma, a quote or a line break are quoted, quotes doubled.</summary>
internal static class Csv
{
    /// <summary>One text field, quoted where RFC 4180 needs it.</summary>
    public static string Field(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") < 0 ? text : "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// The records of a CSV text, each with the line it starts on (1-based, for messages). Quoted fields may hold commas,
    /// doubled quotes and line breaks; unquoted fields are trimmed; blank lines are skipped.
    /// </summary>
    /// <param name="source">The file's name, which starts every error message.</param>
    public static List<(int Line, string[] Fields)> Read(string text, string source)
    {
        var records = new List<(int, string[])>();
        int i = 0, line = 1;
        while (i < text.Length)
        {
            int recordLine = line;
            var fields = new List<string>();
            bool quoted = false;
            while (true)
            {
                int j = i;
                while (j < text.Length && text[j] is ' ' or '\t')
                    j++;
                if (j < text.Length && text[j] == '"')
                {
                    quoted = true;
                    var value = new StringBuilder();
                    int opened = line;
                    for (j++; ; j++)
                    {
                        if (j >= text.Length)
                            throw new FormatException($"{source}:{opened}: a quoted field is not closed (a quote inside a quoted field is written \"\")");
                        if (text[j] == '"')
                        {
                            if (j + 1 < text.Length && text[j + 1] == '"')
                            {
                                value.Append('"');
                                j++;
                                continue;
                            }
                            j++;
                            break;
                        }
                        if (text[j] == '\n' || (text[j] == '\r' && (j + 1 >= text.Length || text[j + 1] != '\n')))
                            line++;
                        value.Append(text[j]);
                    }
                    while (j < text.Length && text[j] is ' ' or '\t')
                        j++;
                    if (j < text.Length && text[j] is not (',' or '\r' or '\n'))
                        throw new FormatException($"{source}:{line}: expected ',' or the end of the line after a quoted field, found '{text[j]}'");
                    fields.Add(value.ToString());
                }
                else
                {
                    int end = j;
                    while (end < text.Length && text[end] is not (',' or '\r' or '\n'))
                        end++;
                    fields.Add(text[j..end].Trim());
                    j = end;
                }
                if (j < text.Length && text[j] == ',')
                {
                    i = j + 1;
                    continue;
                }
                if (j < text.Length)
                {
                    j += text[j] == '\r' && j + 1 < text.Length && text[j + 1] == '\n' ? 2 : 1;
                    line++;
                }
                i = j;
                break;
            }
            if (quoted || fields.Count > 1 || fields[0].Length > 0)
                records.Add((recordLine, fields.ToArray()));
        }
        return records;
    }
}
