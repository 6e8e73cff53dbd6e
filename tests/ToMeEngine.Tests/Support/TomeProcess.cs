using System.Diagnostics;

namespace ToMe.Tests.Support;

/// <summary>Runs the built `tome` command (tome.dll beside the tests), or another program, as a child process, with a time limit.</summary>
internal static class TomeProcess
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) =>
        SelfContained
            ? RunProgram(Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "tome.exe" : "tome"), args)
            : RunProgram("dotnet", [Path.Combine(AppContext.BaseDirectory, "tome.dll"), .. args]);

    // A self-contained publish of the tests (the device check carries one to a machine without .NET) has the runtime
    // beside the tests and tome's own executable, and no dotnet to start tome.dll with.
    private static bool SelfContained =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "coreclr.dll" : OperatingSystem.IsMacOS() ? "libcoreclr.dylib" : "libcoreclr.so"));

    /// <summary>Runs `tome` with <paramref name="environment"/> changed (null removes a variable).</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        RunProgram("dotnet", [Path.Combine(AppContext.BaseDirectory, "tome.dll"), .. args], environment: environment);

    /// <summary>Runs <paramref name="program"/> (the built tome.dll through dotnet, or an installed `tome`) in a folder, with
    /// <paramref name="environment"/> changed (null removes a variable).</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunProgram(string program, IEnumerable<string> args, string? workingDirectory = null,
                                                                          IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? limit = null)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null)
            info.WorkingDirectory = workingDirectory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
                info.Environment.Remove(name);
            else
                info.Environment[name] = value;
        }
        foreach (var a in args)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit ?? TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', info.ArgumentList)} did not finish in {limit ?? TimeSpan.FromMinutes(2)}");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
