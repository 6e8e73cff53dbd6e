using System.Net;
using System.Net.Sockets;
using ToMe.Model;
using ToMe.Weights.Hub;

namespace ToMe.Tests.Hub;

/// <summary>The hub client against a loopback server that answers like the Hugging Face hub.</summary>
public sealed class HubClientTests
{
    [Fact(Timeout = 20000)]
    public async Task FreshCacheDownloadsBothFilesAndTheModelLoads()
    {
        await using var repo = new HubTestRepo();
        var reports = new List<HubProgress>();
        var folder = await repo.ResolveAsync(repo.Options(), new SyncProgress(reports));

        Assert.Equal(repo.SnapshotFolder, folder);
        Assert.Equal(
            new[] { $"blobs/{repo.ConfigETag}", $"blobs/{repo.WeightsETag}", "refs/main", $"snapshots/{HubTestRepo.Commit}/config.json", $"snapshots/{HubTestRepo.Commit}/model.safetensors" }.Order(StringComparer.Ordinal),
            repo.CachedFiles().Order(StringComparer.Ordinal));
        Assert.Equal(HubTestRepo.Commit, File.ReadAllText(Path.Combine(repo.RepoFolder, "refs", "main")));
        if (!OperatingSystem.IsWindows())
            Assert.Equal($"../../blobs/{repo.WeightsETag}", new FileInfo(Path.Combine(folder, "model.safetensors")).LinkTarget);
        Assert.Equal(repo.Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.Equal(2, repo.Server.Count("GET"));

        var last = reports.Last(r => r.File == "model.safetensors");
        Assert.Equal(repo.Weights.Length, last.BytesDone);
        Assert.True(last.Completed);

        var weights = ModelLoader.Load(folder);
        Assert.Equal((128, 3, 2, 14, 100), (weights.Config.EmbedDim, weights.Config.Depth, weights.Config.NumHeads, weights.Config.PatchSize, weights.Config.NumClasses));
        // The config.json served beside the weights describes the same model.
        var hubConfig = ModelConfigReader.FromHubConfig(HubTestRepo.ConfigJson, "config.json");
        Assert.Equal(weights.Config.ParameterCount, hubConfig.ParameterCount);
    }

    [Fact(Timeout = 20000)]
    public async Task SecondResolveUsesTheCacheWithoutDownloading()
    {
        await using var repo = new HubTestRepo();
        var first = await repo.ResolveAsync(repo.Options());
        int getsBefore = repo.Server.Count("GET");
        var second = await repo.ResolveAsync(repo.Options());
        Assert.Equal(first, second);
        Assert.Equal(getsBefore, repo.Server.Count("GET"));
    }

    [Fact(Timeout = 20000)]
    public async Task ConcurrentResolvesDownloadEachFileOnce()
    {
        await using var repo = new HubTestRepo();
        var folders = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => repo.ResolveAsync(repo.Options()))));
        Assert.All(folders, f => Assert.Equal(repo.SnapshotFolder, f));
        // The blob lock makes the others wait and then find the finished blob.
        Assert.Equal(2, repo.Server.Count("GET"));
        Assert.Equal(repo.Weights, File.ReadAllBytes(Path.Combine(repo.SnapshotFolder, "model.safetensors")));
    }

    [Fact(Timeout = 20000)]
    public async Task RedirectToCdnKeepsTheFirstResponsesMetadata()
    {
        await using var repo = new HubTestRepo(redirectToCdn: true);
        var folder = await repo.ResolveAsync(repo.Options());

        // The weights came from the CDN path; the blob is named by X-Linked-Etag, not the redirect's own ETag.
        Assert.Contains(repo.Server.Requests, r => r.Method == "GET" && r.Path == $"/cdn/{repo.WeightsETag}");
        Assert.DoesNotContain(repo.Server.Requests, r => r.Method == "GET" && r.Path.EndsWith("/model.safetensors", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(repo.RepoFolder, "blobs", repo.WeightsETag)));
        Assert.Equal(repo.Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
    }

    [Fact(Timeout = 20000)]
    public async Task DroppedConnectionResumesWithRange()
    {
        const int cut = 1_000_000;
        await using var repo = new HubTestRepo(dropAfterBytes: cut);
        var folder = await repo.ResolveAsync(repo.Options());

        Assert.Contains(repo.Server.Requests, r => r.Method == "GET" && r.Range == $"bytes={cut}-");
        Assert.Equal(repo.Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.DoesNotContain(repo.CachedFiles(), f => f.EndsWith(".incomplete", StringComparison.Ordinal));
    }

    [Fact(Timeout = 20000)]
    public async Task StalledTransferIsResumedAfterTheReadTimeout()
    {
        const int cut = 500_000;
        await using var repo = new HubTestRepo(dropAfterBytes: cut, stall: true);
        var folder = await repo.ResolveAsync(repo.Options() with { ReadTimeout = TimeSpan.FromMilliseconds(500) });
        Assert.Contains(repo.Server.Requests, r => r.Method == "GET" && r.Range == $"bytes={cut}-");
        Assert.Equal(repo.Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
    }

    [Fact(Timeout = 20000)]
    public async Task PartialFileFromAnEarlierRunIsResumed()
    {
        await using var repo = new HubTestRepo();
        var blobs = Directory.CreateDirectory(Path.Combine(repo.RepoFolder, "blobs")).FullName;
        File.WriteAllBytes(Path.Combine(blobs, repo.WeightsETag + ".incomplete"), repo.Weights[..12345]);

        var folder = await repo.ResolveAsync(repo.Options());
        Assert.Contains(repo.Server.Requests, r => r.Method == "GET" && r.Range == "bytes=12345-");
        Assert.Equal(repo.Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
    }

    [Fact(Timeout = 20000)]
    public async Task WrongChecksumIsRefusedAndNothingIsKept()
    {
        await using var repo = new HubTestRepo(corrupt: true);
        var error = await Assert.ThrowsAsync<HubException>(() => repo.ResolveAsync(repo.Options()));
        Assert.Contains("SHA-256", error.Message);
        Assert.Contains(repo.WeightsETag, error.Message);

        var left = repo.CachedFiles();
        Assert.DoesNotContain(left, f => f.Contains(repo.WeightsETag, StringComparison.Ordinal));
        Assert.DoesNotContain(left, f => f.StartsWith("snapshots/", StringComparison.Ordinal) || f.StartsWith("refs/", StringComparison.Ordinal));
        // Nothing loadable remains, so even offline the model is reported missing rather than loaded corrupt.
        var offline = await Assert.ThrowsAsync<HubException>(() => repo.ResolveAsync(repo.Options() with { Offline = true }));
        Assert.Contains("model.safetensors", offline.Message);
    }

    [Fact(Timeout = 20000)]
    public async Task OfflineWithAnEmptyCacheSaysWhatIsMissingAndHowToGetIt()
    {
        await using var repo = new HubTestRepo();
        var error = await Assert.ThrowsAsync<HubException>(() => repo.ResolveAsync(repo.Options() with { Offline = true }));
        Assert.Contains($"timm/{HubTestRepo.Name}", error.Message);
        Assert.Contains("missing config.json and model.safetensors", error.Message);
        Assert.Contains("HF_HUB_OFFLINE=0", error.Message);
        Assert.Contains("into a folder and pass that folder", error.Message);
        Assert.Empty(repo.Server.Requests);
    }

    [Fact(Timeout = 20000)]
    public async Task OfflineWithACompleteCacheNeedsNoServer()
    {
        await using var repo = new HubTestRepo();
        var online = await repo.ResolveAsync(repo.Options());
        int requests = repo.Server.Requests.Count;
        var offline = await repo.ResolveAsync(repo.Options() with { Offline = true });
        Assert.Equal(online, offline);
        Assert.Equal(requests, repo.Server.Requests.Count);
        Assert.Equal(3, ModelLoader.ReadConfig(offline).Depth);
    }

    [Fact(Timeout = 20000)]
    public async Task UnreachableHubFallsBackToACompleteCache()
    {
        await using var repo = new HubTestRepo();
        var online = await repo.ResolveAsync(repo.Options());
        var closed = ClosedLoopbackEndpoint();
        Assert.Equal(online, await repo.ResolveAsync(repo.Options(closed)));
    }

    [Fact(Timeout = 20000)]
    public async Task UnreachableHubWithAnEmptyCacheGivesTheClearError()
    {
        await using var repo = new HubTestRepo();
        var error = await Assert.ThrowsAsync<HubException>(() => repo.ResolveAsync(repo.Options(ClosedLoopbackEndpoint())));
        Assert.Contains("cannot be reached", error.Message);
        Assert.Contains("missing config.json and model.safetensors", error.Message);
    }

    [Fact(Timeout = 20000)]
    public async Task CacheWrittenWithCopiesInsteadOfLinksIsReused()
    {
        // huggingface_hub on Windows without symlinks leaves plain files in the snapshot.
        await using var repo = new HubTestRepo();
        Directory.CreateDirectory(repo.SnapshotFolder);
        File.WriteAllText(Path.Combine(repo.SnapshotFolder, "config.json"), HubTestRepo.ConfigJson);
        File.WriteAllBytes(Path.Combine(repo.SnapshotFolder, "model.safetensors"), repo.Weights);
        Directory.CreateDirectory(Path.Combine(repo.RepoFolder, "refs"));
        File.WriteAllText(Path.Combine(repo.RepoFolder, "refs", "main"), HubTestRepo.Commit);

        Assert.Equal(repo.SnapshotFolder, await repo.ResolveAsync(repo.Options() with { Offline = true }));
        Assert.Equal(repo.SnapshotFolder, await repo.ResolveAsync(repo.Options()));
        Assert.Equal(0, repo.Server.Count("GET"));
    }

    [Fact(Timeout = 20000)]
    public async Task TokenGoesToTheHubAsBearer()
    {
        await using var repo = new HubTestRepo();
        await repo.ResolveAsync(repo.Options() with { Token = "hf_test" });
        Assert.All(repo.Server.Requests, r => Assert.Equal("Bearer hf_test", r.Authorization));
    }

    [Fact(Timeout = 20000)]
    public async Task UnknownRepositoryAndMissingFileAreNamed()
    {
        await using var repo = new HubTestRepo();
        using var client = new HubClient(repo.Options());
        var ct = TestContext.Current.CancellationToken;
        var noRepo = await Assert.ThrowsAsync<HubException>(() => client.ResolveAsync(new HubRepoId("timm", "vit_nope"), null, ct));
        Assert.Contains("no repository timm/vit_nope", noRepo.Message);
        repo.Server.Files.Remove("model.safetensors");
        var noFile = await Assert.ThrowsAsync<HubException>(() => client.ResolveAsync(HubTestRepo.Repo, null, ct));
        Assert.Contains("has no model.safetensors", noFile.Message);
        Assert.DoesNotContain(repo.CachedFiles(), f => f.StartsWith("snapshots/", StringComparison.Ordinal));
    }

    [Fact(Timeout = 20000)]
    public async Task ModelSourceResolvesHubNamesAndLeavesPathsAlone()
    {
        await using var repo = new HubTestRepo();
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal(repo.CacheDirectory, ModelSource.Resolve(repo.CacheDirectory, repo.Options(), cancellationToken: ct));
        Assert.Equal("no/such/model.safetensors", ModelSource.Resolve("no/such/model.safetensors", repo.Options(), cancellationToken: ct));
        Assert.Empty(repo.Server.Requests);

        var folder = ModelSource.Resolve($"timm/{HubTestRepo.Name}", repo.Options(), cancellationToken: ct);
        Assert.Equal(repo.SnapshotFolder, folder);
        Assert.Equal(100, ModelLoader.ReadConfig(folder).NumClasses);
    }

    /// <summary>A loopback port nothing listens on: connections are refused at once.</summary>
    private static string ClosedLoopbackEndpoint()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return $"http://127.0.0.1:{port}";
    }

    /// <summary>Records reports on the reporting thread, in order (Progress&lt;T&gt; would post them to the pool).</summary>
    private sealed class SyncProgress(List<HubProgress> reports) : IProgress<HubProgress>
    {
        public void Report(HubProgress value)
        {
            lock (reports)
                reports.Add(value);
        }
    }
}
