namespace ToMe.Weights.Hub;

/// <summary>Turns what a user names as a model into a local path: existing paths as they are, hub names through the cache.</summary>
public static class ModelSource
{
    /// <summary>The two ways to name a model, for messages about a model that is not there.</summary>
    public const string WaysToGetAModel =
        "A model is a folder in timm's hub layout (config.json + model.safetensors, the files of huggingface.co/timm/NAME), " +
        "or a hub name such as timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k, which is downloaded into the Hugging Face cache once";

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
