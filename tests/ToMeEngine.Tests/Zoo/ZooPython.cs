using System.Diagnostics;
using ToMe.Tests.Support;

namespace ToMe.Tests.Zoo;

/// <summary>
/// Runs Debian's python3 with torch for the zoo tests: the helper beside these tests (zoo_helper.py) and the weights
/// converter. Tests skip with the reason where /usr/bin/python3 or its torch/numpy is absent (CI installs python3-torch).
/// Converted models are cached per test run in one temporary folder, removed when the process exits.
/// </summary>
internal static class ZooPython
{
    public const string Python = "/usr/bin/python3";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(180);
    private static readonly Lazy<string?> missing = new(FindMissing);
    private static readonly Lazy<string> work = new(CreateWorkFolder);
    private static readonly Dictionary<string, string> converted = new();

    /// <summary>The checkout's root (the folder holding ToMeEngine.sln).</summary>
    public static string RepoRoot => RepoData.CheckoutRoot;

    public static string Helper => Path.Combine(RepoRoot, "tests", "ToMeEngine.Tests", "Zoo", "zoo_helper.py");
    public static string Converter => Path.Combine(RepoRoot, "weights-converter", "tome_convert.py");

    /// <summary>A fresh folder inside this run's work folder.</summary>
    public static string NewFolder(string name)
    {
        var dir = Path.Combine(work.Value, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Skips the test, naming what is missing, unless python3 with torch and numpy can run.</summary>
    public static void Require()
    {
        if (missing.Value is { } reason)
            Assert.Skip(reason);
    }

    /// <summary>Runs python3 with the arguments; throws with its output when it fails or overruns the time limit.</summary>
    public static string Run(params string[] arguments)
    {
        Require();
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"python3 {string.Join(' ', arguments)} ran past {Limit.TotalSeconds} s");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"python3 {string.Join(' ', arguments)} exited {process.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
        return stdout.Result + stderr.Result;
    }

    /// <summary>
    /// A zoo family's tiny random model, written by torch with timm's names and converted by the weights converter:
    /// the converted folder (config.json + model.safetensors), once per run.
    /// </summary>
    public static string ConvertedFamily(string family)
    {
        Require();
        lock (converted)
        {
            if (converted.TryGetValue(family, out var done))
                return done;
            var dir = NewFolder(family);
            var pth = Path.Combine(dir, "state_dict.pth");
            Run(Helper, "state_dict", family, pth, "11");
            var output = Path.Combine(dir, "model");
            // The widths are not timm's, so the heads are given; --img-size settles the tiny grid's reading.
            Run(Converter, pth, "-o", output, "--num-heads", "2", "--img-size", "32");
            return converted[family] = output;
        }
    }

    private static string? FindMissing()
    {
        if (!File.Exists(Python))
            return $"needs {Python} with torch and numpy (Debian: apt-get install python3-torch python3-numpy); {Python} is absent";
        try
        {
            var start = new ProcessStartInfo(Python, ["-c", "import torch, numpy"]) { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = Process.Start(start)!;
            var err = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(Limit))
            {
                p.Kill(entireProcessTree: true);
                return $"{Python} -c 'import torch, numpy' did not finish within {Limit.TotalSeconds} s";
            }
            return p.ExitCode == 0 ? null
                : $"needs torch and numpy for {Python} (Debian: apt-get install python3-torch python3-numpy): {err.Result.Trim().Split('\n')[^1]}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"{Python} could not run: {e.Message}";
        }
    }

    private static string CreateWorkFolder()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"tome-zoo-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // A leftover temporary folder is harmless.
            }
        };
        return dir;
    }
}
