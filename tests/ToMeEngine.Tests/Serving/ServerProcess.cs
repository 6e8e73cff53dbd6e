using System.Diagnostics;
using System.Text;

namespace ToMe.Tests.Serving;

/// <summary>
/// A server started as its users start it (<c>dotnet tome.dll serve ...</c>, <c>dotnet run --project samples/...</c>): waits
/// for its "listening on ADDRESS" line, or for its exit; killed on disposal.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder stderr = new();
    private readonly Task stderrPump;

    private ServerProcess(Process process)
    {
        this.process = process;
        stderrPump = Task.Run(async () =>
        {
            string? line;
            while ((line = await process.StandardError.ReadLineAsync()) is not null)
                lock (stderr)
                    stderr.AppendLine(line);
        });
    }

    public Uri? Address { get; private set; }

    public string Stderr
    {
        get
        {
            lock (stderr)
                return stderr.ToString();
        }
    }

    public static ProcessStartInfo Dotnet(string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        return info;
    }

    /// <summary>Starts the process and waits until it listens (Address set) or exits (Address null; read ExitCode, Stderr).</summary>
    public static async Task<ServerProcess> StartAsync(ProcessStartInfo info, TimeSpan limit, CancellationToken cancellationToken)
    {
        var server = new ServerProcess(Process.Start(info)!);
        using var startup = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        startup.CancelAfter(limit);
        try
        {
            string? line;
            while ((line = await server.process.StandardOutput.ReadLineAsync(startup.Token)) is not null)
                if (line.StartsWith("listening on ", StringComparison.Ordinal))
                {
                    server.Address = new Uri(line.Split(' ')[2]);
                    _ = server.process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                    return server;
                }
            await server.process.WaitForExitAsync(startup.Token);
            await server.stderrPump.WaitAsync(startup.Token);
            return server;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await server.DisposeAsync();
            throw new TimeoutException($"{info.FileName} {string.Join(' ', info.ArgumentList)} neither listened nor exited within {limit.TotalSeconds} s");
        }
    }

    /// <summary>The exit code once the process has exited, else null.</summary>
    public int? ExitCode => process.HasExited ? process.ExitCode : null;

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
            process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        process.Dispose();
    }
}
