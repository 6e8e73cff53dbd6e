using System.Diagnostics;
using ToMe.Backends;
using ToMe.Merging;
using ToMe.Model;

namespace ToMe.Benchmarking;

/// <summary>One schedule's measurement.</summary>
internal sealed record ForwardTiming(
    string Schedule,
    string Merge,
    int Batch,
    int FinalTokens,
    double MillisecondsPerBatch,     // median of the kept runs
    double MillisecondsMin,
    double ImagesPerSecond,
    double GigaMultiplyAddsPerImage,
    double AchievedGigaFlops,        // 2 × multiply-adds / time
    double? SpeedupOverBaseline)     // over the r = 0 run of the same invocation; null when it had none
{
    /// <summary>Where the time of the timed runs went, per kind of op (profiled runs only).</summary>
    public IReadOnlyList<OpTime>? Profile { get; init; }

    /// <summary>
    /// Profiled runs: 1 when the op times are wall time of the forward; n &gt; 1 when images ran in parallel and they are
    /// thread-time summed over n threads (the % is then of the forward's wall time × n).
    /// </summary>
    public int? ProfileThreads { get; init; }
}

/// <summary>
/// ToMe's throughput method: inputs already prepared, warm-up, then timed runs with the first quarter discarded.
/// The host clock times the CPU backend; device backends synchronize inside Run (results are downloaded).
/// With <c>profile</c>, every op is timed too (synchronous backends only), at the cost of a clock read per op.
/// </summary>
internal static class ForwardBenchmark
{
    public static IReadOnlyList<ForwardTiming> Run(IBackend backend, ModelWeights weights, int batch, IReadOnlyList<MergeSchedule> schedules,
        MergeStrategy strategy, int warmup, int runs, bool proportionalAttention = true, Action<string>? log = null, bool profile = false,
        Precision precision = Precision.Float32, bool profileThreadTime = false)
    {
        var config = weights.Config;
        using var profiler = profile ? new ProfilingBackend(backend, config, profileThreadTime) : null;
        var images = new float[batch * 3 * config.ImageSize * config.ImageSize];
        var rng = new Random(1234);
        for (int i = 0; i < images.Length; i++)
            images[i] = (float)(rng.NextDouble() * 2 - 1);
        using var pass = new ForwardPass(profiler ?? backend, weights, precision);
        var results = new List<ForwardTiming>();
        double? baseline = null;
        foreach (var schedule in schedules)
        {
            // As classification runs: logits only, and the next batch's upload started while this one runs.
            var options = new ForwardOptions { Schedule = schedule, Strategy = strategy, ProportionalAttention = proportionalAttention, ReturnMerges = false };
            ForwardResult last = null!;
            // A backend with CUDA graphs records a forward on its first run and captures it on its second.
            for (int i = 0; i < (backend is IForwardCapture ? Math.Max(warmup, 2) : warmup); i++)
                last = pass.Run(images, batch, options);
            profiler?.Reset();
            var times = new double[runs];
            for (int i = 0; i < runs; i++)
            {
                long start = Stopwatch.GetTimestamp();
                last = pass.Run(images, batch, options, null, i + 1 < runs ? images : default);
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            var kept = times.Skip(runs / 4).Order().ToArray();
            double median = kept[kept.Length / 2];
            double macs = FlopCounter.MultiplyAdds(config, last);
            double imagesPerSecond = batch / (median / 1000);
            baseline ??= last.TokensPerLayer.All(t => t == config.Tokens) ? imagesPerSecond : null;
            var timing = new ForwardTiming(strategy.UsesSchedule ? schedule.ToString() : "-", strategy.ToString(), batch, last.FinalTokens, median, kept[0], imagesPerSecond,
                macs / 1e9, 2 * macs * imagesPerSecond / 1e9, baseline is double b ? imagesPerSecond / b : null)
            {
                Profile = profiler?.Report(runs, times.Sum()),
                ProfileThreads = profiler?.SummedThreads,
            };
            log?.Invoke($"r = {timing.Schedule}: {timing.MillisecondsPerBatch:F1} ms/batch, {timing.ImagesPerSecond:F1} images/s");
            results.Add(timing);
        }
        return results;
    }
}
