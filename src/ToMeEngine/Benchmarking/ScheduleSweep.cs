using System.Diagnostics;
using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Model;

namespace ToMe.Benchmarking;

/// <summary>One image's top-5 in one row (strategy and schedule) of a sweep, for a per-image report.</summary>
internal readonly record struct SweepPrediction(int Row, string Path, int Label, IReadOnlyList<Prediction> Top5);

/// <summary>
/// Accuracy against speed of several merge variants (strategy and schedule) in one run: each batch of images is decoded
/// once (in parallel, through the engine's input pipeline) and then runs at every variant in turn, so the variants are
/// timed interleaved, on the same images and under the same load; decoding neither counts nor runs during a forward. The
/// first forward of each variant is run once untimed (buffers for its token counts). Unreadable files are reported through
/// <c>skipped</c> and left out of every row.
/// </summary>
internal static class ScheduleSweep
{
    public static IReadOnlyList<ScheduleEvaluation> Run(ToMeEngine engine, IReadOnlyList<(string Path, int Label)> samples,
        IReadOnlyList<(MergeStrategy Strategy, MergeSchedule Schedule)> variants, int batch, Action<string, Exception>? skipped = null,
        Action<SweepPrediction>? predicted = null, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentOutOfRangeException.ThrowIfLessThan(variants.Count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batch, engine.Options.MaxBatchSize);
        var config = engine.Config;
        int s = variants.Count, classes = config.NumClasses, length = 3 * config.ImageSize * config.ImageSize;
        var options = variants.Select(v => engine.WithSchedule(v.Schedule) with { Strategy = v.Strategy, ReturnMerges = false }).ToArray();
        foreach (var (strategy, schedule) in variants)
            strategy.Plan(schedule, config.Depth, config.Tokens, config.PrefixTokens); // a schedule the model cannot run fails before any decoding
        var top1 = new int[s];
        var top5 = new int[s];
        var same = new int[s];
        var ticks = new long[s];
        var batchTicks = new List<long[]>(); // per batch, each row's forward time: the paired speed-ups
        var tokens = new double[s];
        var macs = new double[s];
        var best = new int[s, batch];
        int images = 0, seen = 0, round = 0;

        var pipeline = new InputPipeline(new Preprocessor(config.Preprocess), 0, batch);
        var tensors = new float[batch * length];
        var pending = new List<(string Path, int Label)>(batch);
        foreach (var chunk in samples.Chunk(batch))
        {
            // The whole batch is decoded before its forwards, and nothing decodes while they run: decoders on the same
            // cores would slow whichever variant runs first.
            var prepared = chunk.Select(sample => pipeline.PrepareAsync((tensor, ct) => engine.PreprocessFileAsync(sample.Path, tensor, ct),
                CancellationToken.None)).ToArray();
            for (int j = 0; j < chunk.Length; j++)
            {
                float[] tensor;
                try
                {
                    tensor = prepared[j].GetAwaiter().GetResult();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    skipped?.Invoke(chunk[j].Path, e);
                    continue;
                }
                tensor.AsSpan().CopyTo(tensors.AsSpan(pending.Count * length, length));
                pipeline.Return(tensor);
                pending.Add(chunk[j]);
            }
            seen += chunk.Length;
            if (pending.Count > 0)
                RunBatch();
            progress?.Invoke(seen);
        }

        // No readable image: rows of zeros rather than 0/0.
        double Rate(int i) => images == 0 ? 0 : images / Seconds(ticks[i]);
        return Enumerable.Range(0, s).Select(i =>
        {
            double rate = Rate(i);
            // Each batch's first-row time over this row's: the median and quartiles say how steady the speed-up was.
            var ratios = batchTicks.Select(t => (double)t[0] / Math.Max(t[i], 1)).Order().ToArray();
            return new ScheduleEvaluation(variants[i].Strategy, variants[i].Schedule, images, tokens[i] / Math.Max(images, 1),
                macs[i] / Math.Max(images, 1) / 1e9, Percent(top1[i], images), Percent(top5[i], images), Percent(same[i], images),
                rate, Quantile(ratios, 0.5), Quantile(ratios, 0.25), Quantile(ratios, 0.75));
        }).ToArray();

        void RunBatch()
        {
            int n = pending.Count;
            var input = tensors.AsSpan(0, n * length);
            if (round == 0)
            {
                foreach (var o in options)
                    engine.Forward(input, n, o);
            }
            // Each batch starts at the next variant, so none is always the one that runs first after decoding.
            var times = new long[s];
            batchTicks.Add(times);
            for (int step = 0; step < s; step++)
            {
                int i = (round + step) % s;
                long start = Stopwatch.GetTimestamp();
                var result = engine.Forward(input, n, options[i]);
                times[i] = Stopwatch.GetTimestamp() - start;
                ticks[i] += times[i];
                macs[i] += n * FlopCounter.MultiplyAdds(config, result);
                tokens[i] += n * (double)result.FinalTokens;
                for (int b = 0; b < n; b++)
                {
                    var top = engine.TopK(result.Logits.AsSpan(b * classes, classes), Math.Min(5, classes));
                    int label = pending[b].Label;
                    if (top[0].ClassIndex == label)
                        top1[i]++;
                    if (top.Any(p => p.ClassIndex == label))
                        top5[i]++;
                    best[i, b] = top[0].ClassIndex;
                    predicted?.Invoke(new SweepPrediction(i, pending[b].Path, label, top));
                }
            }
            for (int i = 0; i < s; i++)
                for (int b = 0; b < n; b++)
                    same[i] += best[i, b] == best[0, b] ? 1 : 0;
            images += n;
            round++;
            pending.Clear();
        }
    }

    // Linear interpolation between the order statistics; 0 for no batch.
    private static double Quantile(double[] sorted, double q)
    {
        if (sorted.Length == 0)
            return 0;
        double at = q * (sorted.Length - 1);
        int low = (int)at;
        return low + 1 < sorted.Length ? sorted[low] + (at - low) * (sorted[low + 1] - sorted[low]) : sorted[low];
    }

    private static double Seconds(long ticks) => Math.Max((double)ticks / Stopwatch.Frequency, 1e-9);

    private static double Percent(int n, int total) => total == 0 ? 0 : 100.0 * n / total;
}
