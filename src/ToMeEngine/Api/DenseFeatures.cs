using ToMe.Imaging;

namespace ToMe;

/// <summary>Dense outputs of one image: the merged tokens, which token holds each patch, and the unmerged patch grid.</summary>
public sealed record DenseFeatures(
    int FinalTokens,
    int Channels,
    float[] Tokens,      // [FinalTokens, C] after the final norm
    float[] Sizes,       // [FinalTokens] original tokens held by each
    int[] Groups,        // [T0] final token holding each original token (prefix tokens first; −1: dropped)
    int GridSize,        // patches per side
    float[] PatchGrid);  // [GridSize, GridSize, C]: every patch takes the value of the token that holds it

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
