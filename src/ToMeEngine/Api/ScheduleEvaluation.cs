using ToMe.Benchmarking;
using ToMe.Merging;

namespace ToMe;

/// <summary>
/// One merge strategy and schedule's accuracy and speed over a set of labelled images
/// (<see cref="ScheduleEvaluator.EvaluateSchedules"/>, <see cref="ScheduleEvaluator.EvaluateMerging"/>).
/// </summary>
/// <param name="Merge">The merge strategy this row ran with.</param>
/// <param name="Schedule">The schedule this row ran with (what <paramref name="Merge"/> reads of it: nothing for kth, ToMato and none).</param>
/// <param name="Images">Images scored (unreadable ones are left out of every row).</param>
/// <param name="FinalTokens">Tokens after the last block, the mean over the images (ToMato's count depends on the image).</param>
/// <param name="GigaMultiplyAddsPerImage">Multiply-adds per image in billions (ToMe's "GFLOPs"), at the tokens each forward had.</param>
/// <param name="Top1Percent">Images whose most probable class is the label, in percent.</param>
/// <param name="Top5Percent">Images whose label is among the five most probable classes, in percent.</param>
/// <param name="SameTop1AsFirstPercent">Images whose most probable class equals the first row's, in percent.</param>
/// <param name="ImagesPerSecond">Images per second of the forward passes alone (decoding and preprocessing excluded).</param>
/// <param name="SpeedupOverFirst">
/// How many times faster than the first row: the median over the batches of the first row's forward time over this row's
/// on the same batch (paired, so slow spells of the machine cancel).
/// </param>
/// <param name="SpeedupLowerQuartile">The lower quartile of those per-batch ratios.</param>
/// <param name="SpeedupUpperQuartile">The upper quartile of those per-batch ratios.</param>
public sealed record ScheduleEvaluation(
    MergeStrategy Merge,
    MergeSchedule Schedule,
    int Images,
    double FinalTokens,
    double GigaMultiplyAddsPerImage,
    double Top1Percent,
    double Top5Percent,
    double SameTop1AsFirstPercent,
    double ImagesPerSecond,
    double SpeedupOverFirst,
    double SpeedupLowerQuartile,
    double SpeedupUpperQuartile);

/// <summary>Accuracy against speed of several merge schedules (or strategies) on the same images, in one run.</summary>
public static class ScheduleEvaluator
{
    /// <summary>
    /// Classifies every image at every schedule (the engine's merge strategy and proportional attention are kept; the
    /// engine is not changed) and scores each schedule. Each batch of <paramref name="batchSize"/> images is decoded once,
    /// through the engine's input pipeline, and runs at every schedule in turn, so the schedules are timed interleaved on
    /// the same images and under the same load; the first forward of each schedule runs once untimed. Put the baseline
    /// (usually r = 0) first: agreement and speed-up are relative to the first schedule.
    /// </summary>
    /// <param name="engine">The engine; its model, backend, precision and merge strategy.</param>
    /// <param name="labelledImages">Image files and their class indices.</param>
    /// <param name="schedules">The schedules to compare, the baseline first.</param>
    /// <param name="batchSize">Images per forward pass; 0 for <see cref="EngineOptions.MaxBatchSize"/>.</param>
    /// <param name="onSkipped">Called once for each file that cannot be read or decoded, which is then left out.</param>
    /// <exception cref="ArgumentOutOfRangeException">No schedule, or <paramref name="batchSize"/> is negative or above <see cref="EngineOptions.MaxBatchSize"/>.</exception>
    public static IReadOnlyList<ScheduleEvaluation> EvaluateSchedules(this ToMeEngine engine, IReadOnlyList<(string Path, int Label)> labelledImages,
        IReadOnlyList<MergeSchedule> schedules, int batchSize = 0, Action<string, Exception>? onSkipped = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(labelledImages);
        ArgumentNullException.ThrowIfNull(schedules);
        return ScheduleSweep.Run(engine, labelledImages, schedules.Select(s => (engine.Options.Merge, s)).ToArray(),
            batchSize == 0 ? engine.Options.MaxBatchSize : batchSize, onSkipped);
    }

    /// <summary>
    /// <see cref="EvaluateSchedules"/> over pairs of merge strategy and schedule, e.g. ToMe against random merging and
    /// ToMato at similar speeds: each row runs with its own strategy (the engine's proportional attention is kept).
    /// </summary>
    /// <param name="engine">The engine; its model, backend and precision.</param>
    /// <param name="labelledImages">Image files and their class indices.</param>
    /// <param name="variants">The strategies and schedules to compare, the baseline first.</param>
    /// <param name="batchSize">Images per forward pass; 0 for <see cref="EngineOptions.MaxBatchSize"/>.</param>
    /// <param name="onSkipped">Called once for each file that cannot be read or decoded, which is then left out.</param>
    /// <exception cref="ArgumentOutOfRangeException">No variant, or <paramref name="batchSize"/> is negative or above <see cref="EngineOptions.MaxBatchSize"/>.</exception>
    public static IReadOnlyList<ScheduleEvaluation> EvaluateMerging(this ToMeEngine engine, IReadOnlyList<(string Path, int Label)> labelledImages,
        IReadOnlyList<(MergeStrategy Strategy, MergeSchedule Schedule)> variants, int batchSize = 0, Action<string, Exception>? onSkipped = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(labelledImages);
        ArgumentNullException.ThrowIfNull(variants);
        return ScheduleSweep.Run(engine, labelledImages, variants, batchSize == 0 ? engine.Options.MaxBatchSize : batchSize, onSkipped);
    }
}
