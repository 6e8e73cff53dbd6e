using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using ToMe.Model;
using ToMe.Weights;

namespace ToMe.Cli;

/// <summary>
/// Turns the errors a user can cause into one line on stderr and exit code 2, instead of a stack trace or the whole help:
/// a command line that does not parse (<see cref="Usage"/>), and errors the command's work raises (<see cref="Run"/>).
/// </summary>
internal static class CliErrors
{
    public const int UsageExitCode = 2;

    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is InvalidModelException or FileNotFoundException or DirectoryNotFoundException
                                      or FormatException or ArgumentException or InvalidDataException or IOException
                                      or UnauthorizedAccessException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {ErrorText.Plain(e)}");
            return UsageExitCode;
        }
        catch (Backends.Cuda.Native.CudaException e)
        {
            // The device's answer (out of memory, a lost context): the first line says what failed; the driver's detail after it.
            Console.Error.WriteLine($"error: {e.Message.Split('\n')[0]}");
            return 1;
        }
    }

    /// <summary>
    /// The one-line error for a command line that does not parse, or null when it does (or asks for --help). A token that
    /// looks like an option but names none is an unknown option even where the command takes file arguments: a file whose
    /// name starts with '-' is given after '--' (or as ./-name).
    /// </summary>
    public static string? Usage(ParseResult parse)
    {
        if (parse.Action is { ClearsParseErrors: true })
            return null;
        var command = parse.CommandResult.Command;
        if (UnknownOption(parse) is { } unknown)
            return $"{CommandLine(parse)}: unknown option '{unknown}'; {Suggestion(parse, unknown)}";
        if (parse.Errors.Count == 0)
            return null;
        if (command is RootCommand)
            return parse.UnmatchedTokens.Count > 0
                ? $"unknown command '{parse.UnmatchedTokens[0]}'; tome --help lists the commands"
                : "no command given; tome --help lists the commands";
        var error = parse.Errors[0];
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        // System.CommandLine's "Cannot parse argument 'abc' for option '--top' as expected type 'System.Int32'", in the words
        // the commands use for the numbers they parse themselves.
        if (option is not null && NumberKind(option.ValueType) is { } kind && error.SymbolResult!.Tokens.FirstOrDefault(t => !IsNumber(t.Value, option.ValueType)) is { } bad)
            return $"{option.Name} '{bad.Value}' is not a valid {kind}";
        return error.Message;
    }

    private static string CommandLine(ParseResult parse) =>
        string.Join(' ', Lineage(parse.CommandResult.Command).Reverse().Select(c => c is RootCommand ? "tome" : c.Name));

    /// <summary>The first token that starts with '-' and is no option: left unmatched, or taken for a file argument before any '--'.</summary>
    private static string? UnknownOption(ParseResult parse)
    {
        static bool LooksLikeOption(string token) => token.Length > 1 && token[0] == '-' && !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

        if (parse.UnmatchedTokens.FirstOrDefault(LooksLikeOption) is { } unmatched)
            return unmatched;
        int dashes = parse.Tokens.ToList().FindIndex(t => t.Type == TokenType.DoubleDash);
        var literal = new HashSet<Token>(dashes < 0 ? [] : parse.Tokens.Skip(dashes + 1), ReferenceEqualityComparer.Instance);
        return parse.CommandResult.Children.OfType<ArgumentResult>()
            .SelectMany(a => a.Tokens)
            .FirstOrDefault(t => !literal.Contains(t) && LooksLikeOption(t.Value))?.Value;
    }

    /// <summary>"did you mean --top?" for the nearest option name (a typo's distance), else where the options are listed.</summary>
    private static string Suggestion(ParseResult parse, string unknown)
    {
        var command = parse.CommandResult.Command;
        string name = unknown.Split('=', 2)[0];
        var names = command.Options.Concat(Lineage(command).Skip(1).SelectMany(c => c.Options).Where(o => o.Recursive))
            .SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal)).Distinct();
        var (nearest, distance) = names.Select(n => (n, ArchitectureTable.EditDistance(name, n))).MinBy(x => x.Item2);
        if (nearest is not null && distance <= Math.Max(2, name.Length / 3))
            return $"did you mean {nearest}?";
        // Where the command takes files, something like '-x.jpg' is more likely a file than an option.
        bool fileLike = command.Arguments.Count > 0 && (unknown.Contains('.') || unknown.Contains('/') || File.Exists(unknown));
        return fileLike
            ? $"a file whose name starts with '-' goes after '--' ({CommandLine(parse)} ... -- {unknown}), or as ./{unknown}"
            : $"{CommandLine(parse)} --help lists the options";
    }

    private static string? NumberKind(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(int) || t == typeof(long) => "integer",
        var t when t == typeof(double) || t == typeof(float) => "number",
        _ => null,
    };

    private static bool IsNumber(string text, Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        var inv = CultureInfo.InvariantCulture;
        return type == typeof(int) ? int.TryParse(text, NumberStyles.Integer, inv, out _)
            : type == typeof(long) ? long.TryParse(text, NumberStyles.Integer, inv, out _)
            : double.TryParse(text, NumberStyles.Float, inv, out _);
    }

    /// <summary>The command and the commands it is under, innermost first.</summary>
    private static IEnumerable<Command> Lineage(Command command)
    {
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
            yield return c;
    }
}
