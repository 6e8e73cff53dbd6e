namespace ToMe.Weights.Hub;

/// <summary>
/// Where and how the hub client fetches models. <see cref="FromEnvironment"/> reads the same variables as
/// huggingface_hub, so the engine and Python share one cache and one configuration.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The Hugging Face hub, used when <c>HF_ENDPOINT</c> is not set.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Base URL of the hub (<c>HF_ENDPOINT</c>), without a trailing slash.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>The hub cache folder (<c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>).</summary>
    public string CacheDirectory { get; init; } = DefaultCacheDirectory(Environment.GetEnvironmentVariable);

    /// <summary>Never contact the hub; use only what the cache holds (<c>HF_HUB_OFFLINE=1</c>).</summary>
    public bool Offline { get; init; }

    /// <summary>Bearer token for gated or private repositories (<c>HF_TOKEN</c>, else the token file huggingface-cli writes).</summary>
    public string? Token { get; init; }

    /// <summary>Branch, tag or commit to resolve; <c>main</c> as in huggingface_hub.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>Limit for the metadata request and for any response's headers (<c>HF_HUB_ETAG_TIMEOUT</c>).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Limit for one read of a download body: a stalled transfer is treated as a dropped connection (<c>HF_HUB_DOWNLOAD_TIMEOUT</c>).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a dropped or failed download is resumed before giving up.</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>Pause before the first retry; later retries wait proportionally longer.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long to wait for another process (this engine or Python) that is downloading the same file.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Options from environment variables; <paramref name="getenv"/> replaces the process environment (tests pass a
    /// dictionary rather than mutating the environment other tests share).
    /// </summary>
    public static HubOptions FromEnvironment(Func<string, string?>? getenv = null)
    {
        getenv ??= Environment.GetEnvironmentVariable;
        var options = new HubOptions
        {
            Endpoint = (NonEmpty(getenv("HF_ENDPOINT")) ?? DefaultEndpoint).TrimEnd('/'),
            CacheDirectory = DefaultCacheDirectory(getenv),
            Offline = IsTrue(getenv("HF_HUB_OFFLINE")),
            Token = NonEmpty(getenv("HF_TOKEN")) ?? ReadTokenFile(getenv),
        };
        if (Seconds(getenv("HF_HUB_ETAG_TIMEOUT")) is { } etag)
            options = options with { RequestTimeout = etag };
        if (Seconds(getenv("HF_HUB_DOWNLOAD_TIMEOUT")) is { } download)
            options = options with { ReadTimeout = download };
        return options;
    }

    private static string DefaultCacheDirectory(Func<string, string?> getenv)
    {
        var explicitCache = NonEmpty(getenv("HF_HUB_CACHE")) ?? NonEmpty(getenv("HUGGINGFACE_HUB_CACHE"));
        if (explicitCache is not null)
            return ExpandHome(explicitCache, getenv);
        return Path.Combine(HfHome(getenv), "hub");
    }

    private static string HfHome(Func<string, string?> getenv) =>
        NonEmpty(getenv("HF_HOME")) is { } home ? ExpandHome(home, getenv)
            : Path.Combine(ExpandHome(NonEmpty(getenv("XDG_CACHE_HOME")) ?? "~/.cache", getenv), "huggingface");

    private static string? ReadTokenFile(Func<string, string?> getenv)
    {
        var path = NonEmpty(getenv("HF_TOKEN_PATH")) is { } p ? ExpandHome(p, getenv) : Path.Combine(HfHome(getenv), "token");
        try
        {
            return File.Exists(path) ? NonEmpty(File.ReadAllText(path).Trim()) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // an unreadable token file means anonymous access, as in huggingface_hub
        }
    }

    private static string ExpandHome(string path, Func<string, string?> getenv)
    {
        if (path != "~" && !path.StartsWith("~/", StringComparison.Ordinal))
            return path;
        var home = NonEmpty(getenv("HOME")) ?? NonEmpty(getenv("USERPROFILE")) ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, path.Length > 2 ? path[2..] : "");
    }

    // huggingface_hub's notion of a true flag.
    private static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static TimeSpan? Seconds(string? value) =>
        double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s) : null;

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
