using ToMe.Weights;

namespace ToMe.Model;

/// <summary>
/// Sanity bounds on a configuration's numbers, far above any real ViT. They keep every size the engine
/// derives from a config (tensor shapes in int, parameter and FLOP counts in long, preprocessing buffers)
/// free of overflow, so a config alone (as <c>tome info</c> reads it) cannot drive an absurd allocation or loop.
/// </summary>
public static class ConfigLimits
{
    /// <summary>Largest <see cref="ModelConfig.ImageSize"/>, in pixels.</summary>
    public const int MaxImageSize = 8192;

    /// <summary>Largest <see cref="ModelConfig.EmbedDim"/>.</summary>
    public const int MaxEmbedDim = 65_536;

    /// <summary>Largest <see cref="ModelConfig.MlpHidden"/>.</summary>
    public const int MaxMlpHidden = 262_144;

    /// <summary>Most <see cref="ModelConfig.Tokens"/> (patches plus prefix tokens): 2^20.</summary>
    public const int MaxTokens = 1 << 20;

    /// <summary>Most <see cref="ModelConfig.NumClasses"/>: 2^20.</summary>
    public const int MaxClasses = 1 << 20;

    /// <summary>Images are resized to img_size / crop_pct before the crop; a tiny crop_pct would ask for a gigapixel resize.</summary>
    public const double MinCropPct = 0.1;

    internal static void Check(ModelConfig c, string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok)
                throw new InvalidModelException($"{source}: {what}");
        }
        Require(c.ImageSize <= MaxImageSize, $"img_size {c.ImageSize} exceeds {MaxImageSize}");
        Require(c.EmbedDim <= MaxEmbedDim, $"embed_dim {c.EmbedDim} exceeds {MaxEmbedDim}");
        Require(c.MlpHidden <= MaxMlpHidden, $"mlp hidden size {c.MlpHidden} exceeds {MaxMlpHidden}");
        Require(c.NumClasses <= MaxClasses, $"num_classes {c.NumClasses} exceeds {MaxClasses}");
        // Grid² in long: img_size 8192 with patch 1 would be 67M tokens, over the bound, not an int overflow.
        long tokens = (long)(c.ImageSize / c.PatchSize) * (c.ImageSize / c.PatchSize) + c.PrefixTokens;
        Require(tokens <= MaxTokens, $"{tokens} tokens (img_size {c.ImageSize} / patch_size {c.PatchSize}) exceed {MaxTokens}");
        Require(c.Preprocess.CropPct >= MinCropPct, $"crop_pct {c.Preprocess.CropPct} is below {MinCropPct}");
        Require(c.Preprocess.Mean.All(float.IsFinite), "mean entries must be finite");
        Require(c.NormEps > 0 && float.IsFinite(c.NormEps), $"norm eps {c.NormEps} must be positive and finite");
    }
}
