using System.Diagnostics;

namespace ToMe.Tests.Support;

/// <summary>Runs the built `tome` command (tome.dll beside the tests) as a child process, with a time limit.</summary>
internal static class TomeProcess
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => Run(new Dictionary<string, string?>(), args);

    /// <summary>Runs `tome` with <paramref name="environment"/> changed (null removes a variable).</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
        {
            if (value is null)
                info.Environment.Remove(name);
            else
                info.Environment[name] = value;
        }
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tome.dll"));
        foreach (var a in args)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"tome {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
