using ToMe.Imaging;
using ToMe.Merging;

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

/// <summary>Per-image views of a forward pass: dense features and ToMe's merge visualization.</summary>
public static class EngineFeatures
{
    /// <summary>Runs one image and unmerges the final tokens back onto the patch grid.</summary>
    public static DenseFeatures ExtractFeatures(this ToMeEngine engine, RgbImage image)
    {
        var config = engine.Config;
        var result = engine.Forward(engine.Preprocess(image), 1, returnTokens: true);
        int c = config.EmbedDim, grid = config.GridSize;
        var patchGrid = Unmerge.PatchGrid(result.Tokens!, result.Groups, 1, result.FinalTokens, c, config.PrefixTokens, grid, grid);
        return new DenseFeatures(result.FinalTokens, c, result.Tokens!, result.Size, result.Groups, grid, patchGrid);
    }

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
