using System.Globalization;
using ToMe.Weights.Hub;

namespace ToMe.Cli;

/// <summary>
/// One self-overwriting line on stderr per file being downloaded. Implements <see cref="IProgress{T}"/> directly
/// rather than through <see cref="Progress{T}"/>, which would post reports out of order to the thread pool.
/// </summary>
internal sealed class ConsoleDownloadProgress : IProgress<HubProgress>
{
    private string? lastLine;

    public void Report(HubProgress value)
    {
        var inv = CultureInfo.InvariantCulture;
        double percent = value.BytesTotal == 0 ? 100 : 100.0 * value.BytesDone / value.BytesTotal;
        var line = string.Create(inv, $"downloading {value.Repo}/{value.File}: {value.BytesDone / 1e6:F1} / {value.BytesTotal / 1e6:F1} MB ({percent:F0}%)");
        if (line == lastLine)
            return;
        // Pad to overwrite a longer previous line; finish the line once the file is complete.
        Console.Error.Write("\r" + line.PadRight(lastLine?.Length ?? 0));
        lastLine = value.Completed ? null : line;
        if (value.Completed)
            Console.Error.WriteLine();
    }
}
