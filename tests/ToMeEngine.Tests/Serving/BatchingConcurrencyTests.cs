using System.Collections.Concurrent;
using System.Diagnostics;
using ToMe.Imaging;
using ToMe.Serving;

namespace ToMe.Tests.Serving;

/// <summary>Many threads at one batching classifier: every caller gets exactly its own, unchanged answer.</summary>
/// <remarks>
/// The second round is shorter than the first: it only has to show that memory does not grow, and the suite must stay
/// quick on two cores. Merging is on (r = 64 of 256 patches per block), so batching is checked with ToMe's per-image
/// decisions too, and the forward pass costs less. Managed memory is a process-wide number, so these tests run alone
/// (a test running beside them, e.g. one holding 500 decoded photos, would read as growth here).
/// </remarks>
[Collection(nameof(Reliability.SoakCollection))]
public sealed class BatchingConcurrencyTests(ITestOutputHelper output)
{
    private const int Threads = 64, Requests = 2000, SecondRound = 500, Classes = 100;

    [Fact(Timeout = 120_000)]
    public async Task ConcurrentRequestsGetTheirSerialAnswers()
    {
        using var engine = ToMeEngine.Load(ServingTestData.ModelPath,
            new EngineOptions { Backend = BackendKind.Cpu, Schedule = ToMe.Merging.MergeSchedule.Constant(64) });
        // Small encoded images of three formats and one photo-sized JPEG (decoded by the callers), plus decoded pixels of other sizes.
        var encoded = new[] { "tiny_420_q90.jpg", "png_palette.png", "bmp_rgb.bmp", "baseline_420_q90.jpg" }
            .Select(n => File.ReadAllBytes(Support.RepoData.Path(Path.Combine("images", n)))).ToArray();
        var inputs = encoded.Select(b => ImageInput.FromBytes(b))
            .Concat([Noise(224, 224, 1), Noise(97, 301, 2), Noise(640, 80, 3)]).ToArray();
        var expected = encoded.Select(b => ImageDecoder.Decode(b))
            .Concat([Noise(224, 224, 1), Noise(97, 301, 2), Noise(640, 80, 3)])
            .Select(image => engine.Classify(image, Classes)).ToArray();
        await using var classifier = new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = 16, MaxQueueLength = Requests }, ownsEngine: false);

        var first = await Round(classifier, inputs, expected, Requests);
        long afterFirst = Reliability.ResourceProbe.ManagedBytes();
        var second = await Round(classifier, inputs, expected, SecondRound);
        long afterSecond = Reliability.ResourceProbe.ManagedBytes();

        var stats = classifier.Statistics;
        output.WriteLine($"{Requests} requests from {Threads} threads in {first.TotalMilliseconds:F0} ms, then {SecondRound} in {second.TotalMilliseconds:F0} ms; " +
                         $"{stats.Batches} batches, mean batch size {stats.MeanBatchSize:F2}; managed memory after round 1 {afterFirst >> 10} KiB, " +
                         $"after round 2 {afterSecond >> 10} KiB");
        Assert.Equal(Requests + SecondRound, stats.Completed);
        Assert.Equal(Requests + SecondRound, stats.Images);
        Assert.True(stats.MeanBatchSize > 1, $"batches did not form: mean batch size {stats.MeanBatchSize:F2}");
        // What the classifier keeps between rounds is bounded and does not depend on the order requests came in: one
        // workspace at the largest batch, one batch input, at most a batch of pooled tensors (about 10 MB each here).
        Assert.True(afterSecond - afterFirst < 8L << 20, $"memory grew by {(afterSecond - afterFirst) >> 10} KiB over a second round");
    }

    private static RgbImage Noise(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(width, height, pixels);
    }

    private static async Task<TimeSpan> Round(BatchingClassifier classifier, ImageInput[] inputs, IReadOnlyList<Prediction>[] expected, int requests)
    {
        var answers = new ConcurrentDictionary<int, IReadOnlyList<Prediction>>();
        var errors = new ConcurrentQueue<Exception>();
        var watch = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            for (int id = t; id < requests; id += Threads)
            {
                try
                {
                    var result = classifier.ClassifyAsync(inputs[id % inputs.Length], Classes).GetAwaiter().GetResult();
                    if (!answers.TryAdd(id, result))
                        errors.Enqueue(new InvalidOperationException($"request {id} answered twice"));
                }
                catch (Exception e)
                {
                    errors.Enqueue(e);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        await Task.Run(() => threads.ForEach(t => t.Join()));
        Assert.Empty(errors);
        Assert.Equal(requests, answers.Count);
        foreach (var (id, answer) in answers)
            ServingTestData.AssertSame(expected[id % inputs.Length], answer, $"request {id} (input {inputs[id % inputs.Length]})");
        return watch.Elapsed;
    }

    [Fact(Timeout = 60_000)]
    public async Task ABadImageFailsOnlyItsRequest()
    {
        using var engine = ServingTestData.LoadEngine();
        var encoded = ServingTestData.Encoded();
        var expected = ServingTestData.Serial(engine, encoded, 5);
        await using var classifier = new BatchingClassifier(engine, new BatchingOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(20) }, ownsEngine: false);
        var good = encoded.Select(b => classifier.ClassifyAsync(b, cancellationToken: TestContext.Current.CancellationToken)).ToList();
        var bad = classifier.ClassifyAsync(new byte[] { 1, 2, 3, 4 }, cancellationToken: TestContext.Current.CancellationToken);
        await Assert.ThrowsAsync<InvalidImageException>(() => bad);
        for (int i = 0; i < good.Count; i++)
            ServingTestData.AssertSame(expected[i], await good[i], ServingTestData.ImageNames[i]);
        Assert.Equal(1, classifier.Statistics.Failed);
    }
}
