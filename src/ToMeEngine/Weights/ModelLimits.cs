namespace ToMe.Weights;

/// <summary>
/// Bounds on what a model's files may declare, checked before anything of that size is allocated or walked,
/// so a small hostile file cannot exhaust memory or time. Every refusal is an <see cref="InvalidModelException"/>
/// naming the file and the limit. The defaults sit well above any real timm ViT.
/// </summary>
public sealed record ModelLimits
{
    /// <summary>The defaults: 100 MiB headers, 100,000 tensors, 16 MiB configurations, JSON 64 deep.</summary>
    public static ModelLimits Default { get; } = new();

    /// <summary>Largest safetensors JSON header (the format's own readers use 100 MiB).</summary>
    public long MaxHeaderBytes { get; init; } = SafeTensorsFile.MaxHeaderBytes;

    /// <summary>Most tensors one safetensors file may list (a ViT-Huge has about 500).</summary>
    public int MaxTensors { get; init; } = 100_000;

    /// <summary>Largest <c>config.json</c> read; timm's largest, with 21k label names, is under 1 MiB.</summary>
    public long MaxConfigBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>Deepest JSON nesting accepted in a configuration (timm's configs nest 3 deep).</summary>
    public int MaxJsonDepth { get; init; } = 64;

    internal void Validate()
    {
        if (MaxHeaderBytes < 2)
            throw new ArgumentOutOfRangeException(nameof(MaxHeaderBytes), MaxHeaderBytes, "must be at least 2");
        if (MaxTensors < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxTensors), MaxTensors, "must be at least 1");
        if (MaxConfigBytes < 2)
            throw new ArgumentOutOfRangeException(nameof(MaxConfigBytes), MaxConfigBytes, "must be at least 2");
        if (MaxJsonDepth is < 4 or > 1000)
            throw new ArgumentOutOfRangeException(nameof(MaxJsonDepth), MaxJsonDepth, "must be in 4..1000");
    }
}
