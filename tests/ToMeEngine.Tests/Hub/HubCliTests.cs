using System.Diagnostics;

namespace ToMe.Tests.Hub;

/// <summary>`tome info` given a hub name, aimed at the loopback hub through the child process's HF_* variables.</summary>
public sealed class HubCliTests
{
    [Fact(Timeout = 60000)]
    public async Task InfoFetchesAHubNameIntoTheCache()
    {
        await using var repo = new HubTestRepo();
        var (code, stdout, stderr) = RunTome(repo, offline: false, "info", "--model", $"timm/{HubTestRepo.Name}");
        Assert.True(code == 0, stderr);
        Assert.Contains("128 channels, 2 heads", stdout);
        // stderr is redirected here, so no progress line is written.
        Assert.DoesNotContain("downloading", stderr);
        Assert.True(File.Exists(Path.Combine(repo.SnapshotFolder, "model.safetensors")));
    }

    [Fact(Timeout = 60000)]
    public async Task OfflineMissingModelIsAOneLineError()
    {
        await using var repo = new HubTestRepo();
        var (code, _, stderr) = RunTome(repo, offline: true, "info", "--model", $"timm/{HubTestRepo.Name}");
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains("HF_HUB_OFFLINE=0", stderr);
        Assert.Empty(repo.Server.Requests);
    }

    private static (int, string, string) RunTome(HubTestRepo repo, bool offline, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tome.dll"));
        foreach (var a in args)
            info.ArgumentList.Add(a);
        // Only the child's environment is set: tests run in parallel and share this process's.
        info.Environment["HF_ENDPOINT"] = repo.Server.Endpoint;
        info.Environment["HF_HUB_CACHE"] = repo.CacheDirectory;
        info.Environment["HF_HUB_OFFLINE"] = offline ? "1" : "0";
        info.Environment.Remove("HF_TOKEN");
        info.Environment["HF_TOKEN_PATH"] = Path.Combine(repo.CacheDirectory, "no-token");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        if (!process.WaitForExit(TimeSpan.FromSeconds(50)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"tome {string.Join(' ', args)} did not finish in 50 s");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
