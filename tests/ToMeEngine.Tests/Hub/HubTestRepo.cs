using System.Text;
using ToMe.Tests.Support;
using ToMe.Weights.Hub;

namespace ToMe.Tests.Hub;

/// <summary>
/// The small fixture model published as a timm hub repository by a <see cref="FakeHubServer"/>, and an empty cache
/// folder; everything is removed on dispose.
/// </summary>
internal sealed class HubTestRepo : IAsyncDisposable
{
    public const string Name = "vit_p14_d3.fixture";
    public const string Commit = "0123456789abcdef0123456789abcdef01234567";
    public static readonly HubRepoId Repo = new("timm", Name);

    // timm's config.json for the fixture: model_args describe the randomized ViT in vit_p14_d3.safetensors.
    public const string ConfigJson = """
        {
          "architecture": "vit_p14_d3",
          "num_classes": 100,
          "num_features": 128,
          "global_pool": "token",
          "model_args": {"img_size": 224, "patch_size": 14, "embed_dim": 128, "depth": 3, "num_heads": 2, "mlp_ratio": 4.0, "num_classes": 100},
          "pretrained_cfg": {"input_size": [3, 224, 224], "crop_pct": 0.875, "interpolation": "bicubic",
                             "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "num_classes": 100}
        }
        """;

    public string CacheDirectory { get; } = Directory.CreateTempSubdirectory("tome-hub-").FullName;
    public FakeHubServer Server { get; }
    public byte[] Weights { get; }

    public HubTestRepo(bool redirectToCdn = false, int dropAfterBytes = -1, bool corrupt = false, bool stall = false)
    {
        Weights = File.ReadAllBytes(Fixtures.ModelPath("vit_p14_d3"));
        Server = new FakeHubServer($"timm/{Name}", Commit, new Dictionary<string, byte[]>
        {
            ["config.json"] = Encoding.UTF8.GetBytes(ConfigJson),
            ["model.safetensors"] = Weights,
        })
        {
            RedirectLfsToCdn = redirectToCdn,
            DropAfterBytes = dropAfterBytes,
            StallInsteadOfDrop = stall,
            CorruptLfsBody = corrupt,
        };
    }

    public string WeightsETag => Server.Files["model.safetensors"].ETag;
    public string ConfigETag => Server.Files["config.json"].ETag;
    public string RepoFolder => Path.Combine(CacheDirectory, "models--timm--" + Name);
    public string SnapshotFolder => Path.Combine(RepoFolder, "snapshots", Commit);

    /// <summary>Short limits and no retry pauses, so a failing test fails within seconds.</summary>
    public HubOptions Options(string? endpoint = null) => new()
    {
        Endpoint = endpoint ?? Server.Endpoint,
        CacheDirectory = CacheDirectory,
        RequestTimeout = TimeSpan.FromSeconds(3),
        ReadTimeout = TimeSpan.FromSeconds(3),
        MaxRetries = 3,
        RetryDelay = TimeSpan.Zero,
        LockTimeout = TimeSpan.FromSeconds(3),
    };

    public async Task<string> ResolveAsync(HubOptions options, IProgress<HubProgress>? progress = null)
    {
        using var client = new HubClient(options);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(15));
        return await client.ResolveAsync(Repo, progress, limit.Token);
    }

    /// <summary>Every file under the cache's blobs/ and snapshots/ folders, relative to the repository folder.</summary>
    public string[] CachedFiles() =>
        Directory.Exists(RepoFolder)
            ? Directory.EnumerateFileSystemEntries(RepoFolder, "*", SearchOption.AllDirectories)
                .Where(p => !Directory.Exists(p))
                .Select(p => Path.GetRelativePath(RepoFolder, p).Replace('\\', '/')).Order().ToArray()
            : [];

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Directory.Delete(CacheDirectory, recursive: true);
    }
}
