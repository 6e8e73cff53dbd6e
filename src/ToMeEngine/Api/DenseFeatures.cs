using ToMe.Imaging;

namespace ToMe;

/// <summary>Dense outputs of one image: the merged tokens, which token holds each patch, and the unmerged patch grid.</summary>
/// <param name="FinalTokens">Tokens after the last block, prefix tokens included.</param>
/// <param name="Channels">Channels per token (C, the model's embedding width).</param>
/// <param name="Tokens">[FinalTokens, C], row-major: the last block's output after the final norm.</param>
/// <param name="Sizes">[FinalTokens]: how many original tokens each final token holds.</param>
/// <param name="Groups">[T0]: the final token holding each original token, prefix tokens first (−1: dropped).</param>
/// <param name="GridSize">Patches per side (H_p = W_p).</param>
/// <param name="PatchGrid">[GridSize, GridSize, C], row-major: every patch takes the value of the token that holds it.</param>
public sealed record DenseFeatures(
    int FinalTokens,
    int Channels,
    float[] Tokens,
    float[] Sizes,
    int[] Groups,
    int GridSize,
    float[] PatchGrid);

/// <summary>ToMe's merge visualization of one image.</summary>
public static class EngineFeatures
{
    /// <summary>ToMe's picture of the merged groups on the model's input crop (each group in its mean colour, outlined).</summary>
    public static RgbImage VisualizeMerging(this ToMeEngine engine, RgbImage image) =>
        engine.VisualizeMerging(image, engine.ExtractFeatures(image));

    /// <summary>The same picture from features already extracted for this image.</summary>
    public static RgbImage VisualizeMerging(this ToMeEngine engine, RgbImage image, DenseFeatures features)
    {
        var config = engine.Config;
        var crop = new Preprocessor(config.Preprocess).ResizeAndCrop(image);
        return MergeVisualizer.Render(crop, features.Groups, config.PrefixTokens, config.PatchSize);
    }
}
