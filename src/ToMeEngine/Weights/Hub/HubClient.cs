using System.Net;
using System.Net.Http.Headers;

namespace ToMe.Weights.Hub;

/// <summary>What the hub says about one file: the commit it belongs to, its ETag (the SHA-256 for LFS files), size and where to fetch it.</summary>
public sealed record HubFileMetadata(string File, string Commit, string ETag, long Size, Uri DownloadUri);

/// <summary>
/// Fetches timm models (<c>config.json</c> + <c>model.safetensors</c>) from the Hugging Face hub into huggingface_hub's
/// cache and returns the snapshot folder, which <see cref="Model.ModelLoader"/> reads like any model folder.
/// Works as <c>hf_hub_download</c> does: a HEAD whose redirects are followed by hand so the first response's
/// metadata headers are kept, then a resumable, verified GET into <c>blobs/</c>; the snapshot links appear only
/// once every file is complete, so a half-fetched model is never found as a model.
/// </summary>
public sealed class HubClient : IDisposable
{
    /// <summary>The files a timm model repository provides that the engine loads.</summary>
    public static readonly IReadOnlyList<string> ModelFiles = ["config.json", "model.safetensors"];

    private const int MaxRedirects = 10;
    private readonly HttpClient http;
    private readonly Uri endpoint;

    /// <summary>The endpoint, cache folder, token, revision and limits this client works with.</summary>
    public HubOptions Options { get; }

    /// <summary>The huggingface_hub cache layout under <see cref="HubOptions.CacheDirectory"/>.</summary>
    internal HubCache Cache { get; }

    /// <summary>A client for the hub; <paramref name="options"/> null reads them from the environment (<see cref="HubOptions.FromEnvironment"/>).</summary>
    public HubClient(HubOptions? options = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        endpoint = new Uri(Options.Endpoint.TrimEnd('/') + "/");
        Cache = new HubCache(Options.CacheDirectory);
        http = new HttpClient(new SocketsHttpHandler
        {
            // Redirects are followed by hand: the hub's metadata headers sit on the redirect itself, and the token
            // must not travel to the CDN host.
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = Options.RequestTimeout,
        })
        {
            // Each request gets its own limits (headers, then every read); a fixed total would cut off large models.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Releases the HTTP connections; files already in the cache stay.</summary>
    public void Dispose() => http.Dispose();

    /// <summary>Blocking form of <see cref="ResolveAsync"/> for synchronous callers such as the model loader.</summary>
    public string Resolve(HubRepoId repo, IProgress<HubProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => ResolveAsync(repo, progress, cancellationToken), cancellationToken).GetAwaiter().GetResult();

    /// <summary>
    /// The local folder holding <paramref name="repo"/>'s <see cref="ModelFiles"/> at <see cref="HubOptions.Revision"/>,
    /// downloading what the cache lacks. Offline, or when the hub cannot be reached, a complete cached snapshot is used.
    /// </summary>
    /// <exception cref="HubException">The model is neither downloadable nor cached; the message says what is missing and what to do.</exception>
    public async Task<string> ResolveAsync(HubRepoId repo, IProgress<HubProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (Options.Offline)
            return Cache.FindSnapshot(repo, Options.Revision, ModelFiles) ?? throw NotCached(repo, null);

        var metadata = new List<HubFileMetadata>();
        try
        {
            foreach (var file in ModelFiles)
                metadata.Add(await GetMetadataAsync(repo, file, cancellationToken).ConfigureAwait(false));
        }
        catch (HubUnreachableException e)
        {
            // huggingface_hub does the same: no network is not an error while the cache can answer.
            return Cache.FindSnapshot(repo, Options.Revision, ModelFiles) ?? throw NotCached(repo, e);
        }
        var commit = metadata[0].Commit;
        if (metadata.Any(m => m.Commit != commit))
            throw new HubException($"{repo}: the files of revision '{Options.Revision}' belong to different commits (the repository changed meanwhile); run again");

        var snapshot = Cache.SnapshotFolder(repo, commit);
        var needed = metadata.Where(m => !File.Exists(Path.Combine(snapshot, m.File))).ToList();
        foreach (var meta in needed.Where(m => !File.Exists(Cache.BlobPath(repo, m.ETag))))
            await BlobDownload.RunAsync(this, repo, meta, progress, cancellationToken).ConfigureAwait(false);
        // Linked only now that every blob is verified: a snapshot with both files is a complete model.
        foreach (var meta in needed)
            Cache.LinkIntoSnapshot(repo, commit, meta.File, meta.ETag);
        Cache.WriteRef(repo, Options.Revision, commit);
        return snapshot;
    }

    /// <summary>HEAD on the file's resolve URL: commit, ETag and size from the first response that carries them.</summary>
    public async Task<HubFileMetadata> GetMetadataAsync(HubRepoId repo, string file, CancellationToken cancellationToken = default)
    {
        var uri = ResolveUri(repo, file);
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var response = await SendAsync(HttpMethod.Head, uri, 0, cancellationToken).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            var commit = Header(response, "X-Repo-Commit");
            var etag = NormalizeETag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag"));
            if (status is >= 300 and < 400)
            {
                var location = Location(response, uri);
                // The hub's redirect to its CDN carries the metadata (X-Linked-*); a mirror's plain redirect does not.
                if (commit is not null && etag is not null)
                    return new HubFileMetadata(file, commit, etag, Size(response, uri, linkedOnly: true), location);
                uri = location;
                continue;
            }
            if (response.IsSuccessStatusCode)
            {
                if (commit is null || etag is null)
                    throw new HubException($"{uri}: the answer lacks X-Repo-Commit or ETag; is {Options.Endpoint} a Hugging Face hub?");
                return new HubFileMetadata(file, commit, etag, Size(response, uri, linkedOnly: false), uri);
            }
            throw StatusError(response, repo, file);
        }
        throw new HubException($"{ResolveUri(repo, file)}: more than {MaxRedirects} redirects");
    }

    /// <summary><c>{endpoint}/{owner}/{name}/resolve/{revision}/{file}</c>, as huggingface_hub's <c>hf_hub_url</c>.</summary>
    public Uri ResolveUri(HubRepoId repo, string file) =>
        new(endpoint, $"{repo.Owner}/{repo.Name}/resolve/{Uri.EscapeDataString(Options.Revision)}/{file}");

    /// <summary>
    /// Sends one request with a limit on the wait for the response headers. Connection failures and timeouts become
    /// <see cref="HubUnreachableException"/>; the body is left to the caller to stream.
    /// </summary>
    internal async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, long rangeFrom, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, uri);
        // The hub's sizes and hashes are of the raw bytes: no transfer compression.
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("ToMeEngine", "1.0"));
        if (Options.Token is { } token && SameOrigin(uri, endpoint))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (rangeFrom > 0)
            request.Headers.Range = new RangeHeaderValue(rangeFrom, null);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Options.RequestTimeout);
        try
        {
            return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HubUnreachableException($"{uri.GetLeftPart(UriPartial.Path)}: no answer within {Options.RequestTimeout.TotalSeconds:0.#} s", e);
        }
        catch (HttpRequestException e)
        {
            throw new HubUnreachableException($"cannot reach {uri.GetLeftPart(UriPartial.Authority)}: {e.Message}", e);
        }
    }

    /// <summary>GET from <paramref name="uri"/>, following redirects (a CDN may redirect again), from byte <paramref name="rangeFrom"/>.</summary>
    internal async Task<HttpResponseMessage> GetAsync(Uri uri, long rangeFrom, CancellationToken cancellationToken)
    {
        for (int hop = 0; ; hop++)
        {
            var response = await SendAsync(HttpMethod.Get, uri, rangeFrom, cancellationToken).ConfigureAwait(false);
            if ((int)response.StatusCode is < 300 or >= 400 || hop == MaxRedirects)
                return response;
            using (response)
                uri = Location(response, uri);
        }
    }

    internal HubException StatusError(HttpResponseMessage response, HubRepoId repo, string file)
    {
        int status = (int)response.StatusCode;
        var page = $"{Options.Endpoint}/{repo}";
        var tokenHint = Options.Token is null ? "set HF_TOKEN to a token that may read it" : "the token in use (HF_TOKEN) may not read it";
        if (status is 429 or >= 500)
            return new HubUnreachableException($"{page}: the hub answered HTTP {status} for {file}; try again later");
        var code = Header(response, "X-Error-Code");
        if (code == "GatedRepo")
            return new HubException($"{repo} is gated: accept its terms at {page} and {tokenHint}");
        if (code == "RepositoryNotFound" || (code is null && status == 401))
            return new HubException($"no repository {repo} on {Options.Endpoint} (if it is private, {tokenHint}); timm's repositories carry the pretrained tag, e.g. timm/vit_base_patch16_224.augreg2_in21k_ft_in1k");
        if (code == "RevisionNotFound")
            return new HubException($"{repo} has no revision '{Options.Revision}'");
        if (code == "EntryNotFound" || (code is null && status == 404))
            return new HubException($"{repo} has no {file} at revision '{Options.Revision}'" +
                (file == "model.safetensors" ? " (older repositories ship only pytorch_model.bin: convert it with weights-converter/ and pass the folder)" : ""));
        return new HubException($"{page}: the hub answered HTTP {status} for {file}");
    }

    private HubException NotCached(HubRepoId repo, HubUnreachableException? why)
    {
        var commit = Cache.CommitOf(repo, Options.Revision);
        var folder = commit is null ? null : Cache.SnapshotFolder(repo, commit);
        var missing = ModelFiles.Where(f => folder is null || !File.Exists(Path.Combine(folder, f)));
        var reason = why is null
            ? "and HF_HUB_OFFLINE=1 forbids downloading it. Set HF_HUB_OFFLINE=0 (with network access) to download it"
            : $"and the hub cannot be reached ({why.Message}). Run again with network access";
        return new HubException(
            $"{repo} (revision {Options.Revision}) is not in the Hugging Face cache at {Cache.Root}: missing {string.Join(" and ", missing)}, {reason}, " +
            $"or download config.json and model.safetensors from {Options.Endpoint}/{repo} into a folder and pass that folder as the model", why);
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v))?.Trim() : null;

    // huggingface_hub strips the weak marker and the quotes; the rest names the blob.
    private static string? NormalizeETag(string? etag) =>
        etag is null ? null : (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"') is { Length: > 0 } e ? e : null;

    private static long Size(HttpResponseMessage response, Uri uri, bool linkedOnly)
    {
        var text = Header(response, "X-Linked-Size") ?? (linkedOnly ? null : response.Content.Headers.ContentLength?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size)
            ? size : throw new HubException($"{uri}: the answer does not say the file's size");
    }

    private static Uri Location(HttpResponseMessage response, Uri current) =>
        response.Headers.Location is { } location ? new Uri(current, location)
            : throw new HubException($"{current}: redirect ({(int)response.StatusCode}) without a Location");

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;
}
