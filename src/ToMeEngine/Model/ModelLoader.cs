using ToMe.Weights;
using ToMe.Weights.Hub;

namespace ToMe.Model;

/// <summary>
/// Finds and loads a model: a folder in timm's hub layout (<c>config.json</c> + <c>model.safetensors</c>), or one
/// <c>.safetensors</c> file whose <c>__metadata__.config</c> holds the configuration (or with a <c>config.json</c> beside it).
/// A name that is not an existing path but a hub name (<c>timm/NAME</c>, a bare timm name) is fetched into the
/// Hugging Face cache first (<see cref="ModelSource"/>).
/// </summary>
public static class ModelLoader
{
    /// <summary>Reads the configuration and checks every tensor's name, shape and dtype, without converting the data.</summary>
    /// <exception cref="FileNotFoundException">No model at <paramref name="path"/>, or a model folder lacks one of its two files.</exception>
    /// <exception cref="InvalidModelException">The files do not describe a supported model; the message names the file and what is wrong.</exception>
    /// <exception cref="HubException">A hub name could not be fetched or found in the cache.</exception>
    public static ModelConfig ReadConfig(string path, ModelLimits? limits = null)
    {
        var (file, config) = Open(path, limits);
        using (file)
            ModelWeights.Check(file, config);
        return config;
    }

    /// <summary>
    /// Reads the configuration and every tensor, checked against it and converted to float32 (F16 and BF16 files widen),
    /// ready for <see cref="ToMeEngine.Create"/>: one load can build several engines (e.g. one per GPU).
    /// </summary>
    /// <param name="path">A model folder, a <c>.safetensors</c> file or a hub name.</param>
    /// <param name="limits">Bounds on what the files may declare; <see cref="ModelLimits.Default"/> when null.</param>
    /// <exception cref="FileNotFoundException">No model at <paramref name="path"/>, or a model folder lacks one of its two files.</exception>
    /// <exception cref="InvalidModelException">The files do not describe a supported model; the message names the file and what is wrong.</exception>
    /// <exception cref="HubException">A hub name could not be fetched or found in the cache.</exception>
    public static ModelWeights Load(string path, ModelLimits? limits = null)
    {
        var (file, config) = Open(path, limits);
        using (file)
            return ModelWeights.Load(file, config);
    }

    /// <summary>
    /// Loads a model from the bytes of its <c>.safetensors</c> file in a stream (a download, a blob, an embedded resource)
    /// as <see cref="Load(string, ModelLimits?)"/> loads a file: checked, converted to float32, ready for
    /// <see cref="ToMeEngine.Create"/>. The stream is read from its position to the end of the file its header declares
    /// (it need not seek, and is left open); the configuration is the file's <c>__metadata__.config</c> or
    /// <paramref name="configJson"/>, timm's <c>config.json</c>.
    /// </summary>
    /// <param name="safetensors">The file's bytes.</param>
    /// <param name="name">What error messages call the model, e.g. the blob's name.</param>
    /// <param name="configJson">The text of timm's <c>config.json</c>, for a file without an embedded configuration; else null.</param>
    /// <param name="limits">Bounds on what the file may declare; <see cref="ModelLimits.Default"/> when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="safetensors"/> or <paramref name="name"/> is null.</exception>
    /// <exception cref="InvalidModelException">The bytes do not describe a supported model (or end early); the message names <paramref name="name"/>.</exception>
    /// <exception cref="IOException">Reading the stream failed.</exception>
    public static ModelWeights Load(Stream safetensors, string name, string? configJson = null, ModelLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(safetensors);
        ArgumentNullException.ThrowIfNull(name);
        limits ??= ModelLimits.Default;
        if (configJson is not null && configJson.Length > limits.MaxConfigBytes)
            throw new InvalidModelException($"{name} (config.json): {configJson.Length} characters exceeds the {limits.MaxConfigBytes}-byte limit for a configuration (ModelLimits.MaxConfigBytes)");
        using var file = SafeTensorsFile.Read(safetensors, name, limits, "pass the bytes of a .safetensors file");
        var config = Configure(file, name, configJson is null ? null : () => configJson, $"{name} (config.json)", limits);
        return ModelWeights.Load(file, config);
    }

    private static (SafeTensorsFile, ModelConfig) Open(string path, ModelLimits? limits)
    {
        limits ??= ModelLimits.Default;
        path = ModelSource.Resolve(path);
        string weightsPath;
        string? hubConfigPath = null;
        if (Directory.Exists(path))
        {
            weightsPath = Path.Combine(path, "model.safetensors");
            hubConfigPath = Path.Combine(path, "config.json");
            foreach (var inside in (string[])[hubConfigPath, weightsPath])
                if (Directory.Exists(inside))
                    throw new InvalidModelException($"{inside} is a directory; a model folder needs config.json and model.safetensors files (timm's hub layout)");
            if (!File.Exists(hubConfigPath))
                throw new FileNotFoundException($"{path}: a model folder needs config.json and model.safetensors (timm's hub layout); config.json is missing", hubConfigPath);
            if (!File.Exists(weightsPath))
                throw new FileNotFoundException($"{path}: a model folder needs config.json and model.safetensors (timm's hub layout); model.safetensors is missing", weightsPath);
        }
        else if (File.Exists(path))
        {
            weightsPath = path;
            var beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "config.json");
            hubConfigPath = File.Exists(beside) ? beside : null;
        }
        else
        {
            throw new FileNotFoundException($"{path}: no such model folder or .safetensors file. {ModelSource.WaysToGetAModel}", path);
        }

        var file = SafeTensorsFile.Open(weightsPath, limits, "pass the model folder or its .safetensors file");
        try
        {
            return (file, Configure(file, weightsPath, hubConfigPath is null ? null : () => ReadConfigText(hubConfigPath, limits), hubConfigPath, limits));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The file's embedded configuration, else the hub config.json that <paramref name="hubConfig"/> reads.</summary>
    private static ModelConfig Configure(SafeTensorsFile file, string weightsName, Func<string>? hubConfig, string? hubConfigName, ModelLimits limits)
    {
        try
        {
            if (file.Metadata.TryGetValue("config", out var embedded))
                return ModelConfigReader.FromEmbeddedConfig(embedded, $"{weightsName} (__metadata__.config)", limits);
            if (hubConfig is not null)
                return ModelConfigReader.FromHubConfig(hubConfig(), hubConfigName!, limits);
            throw new InvalidModelException($"{weightsName}: no model configuration: expected __metadata__.config in the file or a config.json beside it");
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or IndexOutOfRangeException
                                      or OverflowException or (FormatException and not InvalidModelException))
        {
            // The readers check as they go; this net turns a missed check into the documented error.
            throw new InvalidModelException($"{weightsName}: malformed model configuration ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Reads config.json after checking its size, so a multi-gigabyte file is refused, not loaded.</summary>
    private static string ReadConfigText(string path, ModelLimits limits)
    {
        var length = new FileInfo(File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path).Length;
        if (length > limits.MaxConfigBytes)
            throw new InvalidModelException($"{path}: {length} bytes exceeds the {limits.MaxConfigBytes}-byte limit for a configuration (ModelLimits.MaxConfigBytes)");
        return File.ReadAllText(path);
    }
}
