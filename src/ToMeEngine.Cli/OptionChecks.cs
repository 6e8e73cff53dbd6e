using System.CommandLine;
using System.Globalization;

namespace ToMe.Cli;

/// <summary>
/// Checks of option values while the command line parses, before any model loads or image decodes: a bad value is a
/// one-line usage error (<see cref="CliErrors.Usage"/>) that names the option as the user typed it.
/// </summary>
internal static class OptionChecks
{
    /// <summary>
    /// Refuses each value given for <paramref name="option"/> that <paramref name="check"/> throws for: the library's own rule
    /// (e.g. <c>new EngineOptions { Threads = n }.Validate()</c>), so the rule lives in one place and the message names the
    /// option rather than the library's property. Values that are not a <typeparamref name="TValue"/> at all are left to the
    /// parser's error; defaults are not checked.
    /// </summary>
    public static Option<T> Check<T, TValue>(this Option<T> option, Action<TValue> check) where TValue : IParsable<TValue>
    {
        option.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (!TValue.TryParse(token.Value, CultureInfo.InvariantCulture, out var value))
                    continue;
                try
                {
                    check(value);
                }
                catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
                {
                    var message = ErrorText.Plain(e);
                    // A message that quotes the value already ("merge schedule '-1': ...") needs only the option's name.
                    result.AddError(message.Contains($"'{token.Value}'", StringComparison.Ordinal)
                        ? $"{option.Name}: {message}"
                        : $"{option.Name} {token.Value}: {message}");
                    return;
                }
            }
        });
        return option;
    }

    /// <summary>A file to read: it must exist and be a file (not a directory).</summary>
    public static Option<T> InputFile<T>(this Option<T> option) => option.Check((string path) =>
    {
        if (Directory.Exists(path))
            throw new ArgumentException("is a directory; give a file");
        if (!File.Exists(path))
            throw new ArgumentException("no such file");
    });

    /// <summary>
    /// A file to write, checked before the work that produces it: it must not be a directory, and the folder it goes into
    /// must exist. (Whether the folder is writable shows only when writing; the error then names the same path.)
    /// </summary>
    public static Option<T> OutputFile<T>(this Option<T> option) => option.Check((string path) =>
    {
        if (Directory.Exists(path) || path.EndsWith(Path.DirectorySeparatorChar) || path.EndsWith(Path.AltDirectorySeparatorChar))
            throw new ArgumentException("is a directory; give a file path");
        var folder = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(folder) && !Directory.Exists(folder))
            throw new ArgumentException($"folder {folder} does not exist");
    });
}
