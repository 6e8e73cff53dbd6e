using System.Diagnostics;
using ToMe.Imaging;
using ToMe.Merging;

namespace ToMe;

/// <summary>What one image looks like to the engine at one merge schedule: its answer, how its tokens merged, and the cost.</summary>
/// <param name="Schedule">The schedule this ran with.</param>
/// <param name="Predictions">The most probable classes, most probable first.</param>
/// <param name="TokensPerLayer">Tokens entering each block.</param>
/// <param name="FinalTokens">Tokens after the last block (prefix tokens included).</param>
/// <param name="PatchGroups">Distinct groups the patches ended in (a group is one final token).</param>
/// <param name="Visualization">ToMe's picture of the groups on the model's input crop (S×S).</param>
/// <param name="ForwardTime">Wall time of the forward pass alone (no decoding, preprocessing or drawing).</param>
public sealed record MergeInspection(
    MergeSchedule Schedule,
    IReadOnlyList<Prediction> Predictions,
    int[] TokensPerLayer,
    int FinalTokens,
    int PatchGroups,
    RgbImage Visualization,
    TimeSpan ForwardTime);

/// <summary>Runs one image at a merge schedule other than the engine's, e.g. to show how r changes groups, answer and time.</summary>
public static class MergeInspector
{
    /// <summary>
    /// Classifies <paramref name="image"/> with <paramref name="schedule"/> instead of <see cref="EngineOptions.Schedule"/>
    /// (the engine's merge strategy and proportional attention are kept) and draws its merged groups. The engine is not
    /// changed: the schedule applies to this call only, serialized with the engine's other forward passes.
    /// </summary>
    public static MergeInspection Inspect(this ToMeEngine engine, RgbImage image, MergeSchedule schedule, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(schedule);
        var config = engine.Config;
        var input = engine.Preprocess(image);
        long start = Stopwatch.GetTimestamp();
        var result = engine.Forward(input, 1, engine.WithSchedule(schedule));
        var elapsed = Stopwatch.GetElapsedTime(start);
        var predictions = engine.TopK(result.Logits, topK);
        var groups = result.Groups;
        int patchGroups = groups.AsSpan(config.PrefixTokens).ToArray().Where(g => g >= 0).Distinct().Count();
        var crop = new Preprocessor(config.Preprocess).ResizeAndCrop(image);
        var picture = MergeVisualizer.Render(crop, groups, config.PrefixTokens, config.PatchSize);
        return new MergeInspection(schedule, predictions, result.TokensPerLayer, result.FinalTokens, patchGroups, picture, elapsed);
    }
}
