namespace ToMe.Weights.Hub;

/// <summary>Turns what a user names as a model into a local path: existing paths as they are, hub names through the cache.</summary>
public static class ModelSource
{
    /// <summary>
    /// <paramref name="model"/> unchanged when it is an existing file or folder or does not look like a hub name
    /// (the caller then reports it as a missing path); otherwise the snapshot folder of the hub repository it names
    /// (<c>timm/NAME</c>, <c>hf-hub:OWNER/NAME</c>, or a bare timm name), fetched if the cache lacks it.
    /// </summary>
    public static string Resolve(string model, HubOptions? options = null, IProgress<HubProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (File.Exists(model) || Directory.Exists(model) || !HubRepoId.TryParse(model, out var repo))
            return model;
        using var client = new HubClient(options ?? HubOptions.FromEnvironment());
        return client.Resolve(repo, progress, cancellationToken);
    }
}
