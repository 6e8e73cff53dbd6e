using System.Diagnostics;
using ToMe.Imaging;

namespace ToMe.Benchmarking;

/// <summary>The whole path from files on disk: read + decode + preprocess (parallel over the batch), forward, top-k.</summary>
public sealed record EndToEndTiming(int Images, int Batch, double Seconds, double ImagesPerSecond, double DecodeMilliseconds, double ForwardMilliseconds);

internal static class EndToEndBenchmark
{
    public static EndToEndTiming Run(ToMeEngine engine, IReadOnlyList<string> files, int batch)
    {
        int s = engine.Config.ImageSize;
        double decodeMs = 0, forwardMs = 0;
        var clock = Stopwatch.StartNew();
        int done = 0;
        foreach (var chunk in files.Chunk(batch))
        {
            long start = Stopwatch.GetTimestamp();
            var input = new float[chunk.Length * 3 * s * s];
            Parallel.For(0, chunk.Length, i =>
                engine.Preprocess(chunk[i]).CopyTo(input, i * 3 * s * s));
            decodeMs += Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            start = Stopwatch.GetTimestamp();
            var logits = engine.Logits(input, chunk.Length);
            for (int b = 0; b < chunk.Length; b++)
                engine.TopK(logits.AsSpan(b * engine.Config.NumClasses, engine.Config.NumClasses), 5);
            forwardMs += Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            done += chunk.Length;
        }
        double seconds = clock.Elapsed.TotalSeconds;
        return new EndToEndTiming(done, batch, seconds, done / seconds, decodeMs / done, forwardMs / done);
    }
}
