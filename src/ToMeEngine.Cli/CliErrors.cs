using ToMe.Weights;

namespace ToMe.Cli;

/// <summary>Turns the errors a user can cause into one line on stderr and exit code 2, instead of a stack trace.</summary>
internal static class CliErrors
{
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
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
