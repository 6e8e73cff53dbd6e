using System.Diagnostics;
using ToMe.Imaging;

namespace ToMe.Benchmarking;

/// <summary>
/// The whole path from files on disk, and each of its two stages alone: decoding (read + decode + resize + normalize
/// through the input pipeline) and the forward pass (+ top-k) on batches already preprocessed. The slower stage bounds
/// the end-to-end rate; on the CPU both stages share the cores, so the end-to-end rate is below either. Images counts the
/// files that decoded, Skipped those no decoder read (left out of every rate).
/// </summary>
internal sealed record EndToEndTiming(
    string Merge,
    string Schedule,
    int Images,
    int Skipped,
    int Batch,
    int DecodeThreads,
    double DecodeImagesPerSecond,
    double DecodeCoresBusy,
    double ForwardImagesPerSecond,
    double ImagesPerSecond,
    string BoundBy);

internal static class EndToEndBenchmark
{
    /// <summary>
    /// Decode rate: every file through the input pipeline with <paramref name="threads"/> decoders (0: one per core),
    /// tensors dropped as they arrive. Returns images/s over the files that decoded, the cores the process kept busy meanwhile
    /// (CPU time / wall time: below the thread count when the machine has fewer cores free) and the first
    /// <paramref name="keep"/> tensors.
    /// </summary>
    public static (double ImagesPerSecond, double CoresBusy, int Decoded, float[][] Kept) Decode(ToMeEngine engine, IReadOnlyList<string> files, int threads, int keep)
    {
        var pipeline = new InputPipeline(new Preprocessor(engine.Config.Preprocess), threads);
        var kept = new List<float[]>();
        int decoded = 0;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        foreach (var item in pipeline.RunAsync(InputPipeline.Sequence(files), engine.PreprocessFileAsync,
                     window: 4 * pipeline.Parallelism).ToBlockingEnumerable())
        {
            if (item.Tensor is not { } tensor)
                continue;
            decoded++;
            if (kept.Count < keep)
                kept.Add(tensor);
            else
                pipeline.Return(tensor);
        }
        double wall = clock.Elapsed.TotalSeconds;
        double busy = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / wall;
        return (decoded / wall, busy, decoded, kept.ToArray());
    }

    /// <summary>Forward rate: <paramref name="batches"/> forward passes + top-k over one preprocessed batch, after one untimed pass.</summary>
    public static double Forward(ToMeEngine engine, float[][] tensors, int batches)
    {
        int length = tensors[0].Length, n = tensors.Length, classes = engine.Config.NumClasses;
        var input = new float[n * length];
        for (int i = 0; i < n; i++)
            tensors[i].CopyTo(input, i * length);
        engine.Logits(input, n);
        var clock = Stopwatch.StartNew();
        for (int run = 0; run < batches; run++)
        {
            // As ClassifyManyAsync runs consecutive batches: the next one's upload overlaps this forward on a GPU.
            var logits = engine.Logits(input, n, run + 1 < batches ? input : default);
            for (int b = 0; b < n; b++)
                engine.TopK(logits.AsSpan(b * classes, classes), 5);
        }
        return batches * n / clock.Elapsed.TotalSeconds;
    }

    /// <summary>End to end: ClassifyManyAsync over the files (decoding overlapped with the forward passes), images/s over those classified.</summary>
    public static double Run(ToMeEngine engine, IReadOnlyList<string> files, int threads)
    {
        int classified = 0;
        var clock = Stopwatch.StartNew();
        foreach (var result in engine.ClassifyManyAsync(files, 5, threads).ToBlockingEnumerable())
            if (result.Succeeded)
                classified++;
        return classified / clock.Elapsed.TotalSeconds;
    }
}
