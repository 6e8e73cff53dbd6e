using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// ClassifyManyAsync and ClassifyBatch tell each forward the next batch when it has decoded, so the GPU uploads it while the
/// forward runs: the results equal forwards of the same batches given nothing ahead. The emulated device reports any
/// access of the copy and compute streams to the same memory without an event between them. (The emulator's thread
/// orders are set per launching thread and these forwards run on the thread pool; the forward-level overlap test in
/// <see cref="CudaGraphTests"/> runs them under several.)
/// </summary>
public sealed class ClassifyOverlapTests
{
    private const int MaxBatch = 2, Count = 7; // three full batches and a batch of one

    private static RgbImage Picture(int i)
    {
        var rng = new Random(100 + i);
        var image = new RgbImage(40 + i, 36);
        rng.NextBytes(image.Pixels);
        return image;
    }

    /// <summary>The predictions of each batch of MaxBatch consecutive images, run with no batch announced ahead.</summary>
    private static List<IReadOnlyList<Prediction>> OneBatchAtATime(ToMeEngine engine, RgbImage[] pictures)
    {
        int length = engine.Preprocess(pictures[0]).Length, classes = engine.Config.NumClasses;
        var expected = new List<IReadOnlyList<Prediction>>();
        foreach (var chunk in pictures.Chunk(MaxBatch))
        {
            var logits = engine.Logits(chunk.SelectMany(engine.Preprocess).ToArray(), chunk.Length);
            for (int b = 0; b < chunk.Length; b++)
                expected.Add(engine.TopK(logits.AsSpan(b * classes, classes), 3));
        }
        return expected;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // graphs off: every forward op by op, the upload still staged ahead
    public async Task ClassifyManyOverlapsTheNextUploadWithUnchangedResults(bool graphs)
    {
        BackendPair.CreateGpu().Dispose(); // skips (or fails) without a device
        var weights = GpuFaultTests.TinyModel();
        var options = new EngineOptions
        {
            Backend = BackendKind.Cuda, MaxBatchSize = MaxBatch, Schedule = MergeSchedule.Constant(2), CudaGraphs = graphs,
        };
        var pictures = Enumerable.Range(0, Count).Select(Picture).ToArray();
        List<IReadOnlyList<Prediction>> expected;
        using (var reference = ToMeEngine.Create(weights, options))
            expected = OneBatchAtATime(reference, pictures);

        using var engine = ToMeEngine.Create(weights, options);
        // The first batch decodes only once the second has, so the first forward is sure to find the next batch ready.
        var secondDecoded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int second = 0;
        async Task<RgbImage> Decode(int i, CancellationToken ct)
        {
            if (i < MaxBatch)
                await secondDecoded.Task.WaitAsync(ct);
            else if (i < 2 * MaxBatch && Interlocked.Increment(ref second) == MaxBatch)
                secondDecoded.SetResult();
            return pictures[i];
        }
        var results = new List<ImageClassification<int>>();
        await foreach (var r in engine.ClassifyManyAsync(Enumerable.Range(0, Count), Decode, 3, 2 * MaxBatch, TestContext.Current.CancellationToken))
            results.Add(r);

        Assert.Equal(Enumerable.Range(0, Count), results.Select(r => r.Input));
        for (int i = 0; i < Count; i++)
            Assert.Equal(expected[i], results[i].Predictions);
        var stats = engine.CudaGraphStatistics!;
        Assert.InRange(stats.Prefetched, 1, Count / MaxBatch);
        Assert.Equal(0, stats.Failures);

        // The synchronous form runs the same pipeline.
        var batch = engine.ClassifyBatch(pictures, 3);
        for (int i = 0; i < Count; i++)
            Assert.Equal(expected[i], batch[i]);
    }

    /// <summary>
    /// A batch announced ahead and then never run (its caller left the enumeration, was cancelled or failed) is not taken
    /// for a later forward's images at the same memory: once that caller has gone, its freed pinned memory is often
    /// where the next pinned array of that size goes, holding another caller's images.
    /// </summary>
    [Fact]
    public void ABatchAnnouncedButNeverRunIsNotTakenForLaterImagesAtItsMemory()
    {
        BackendPair.CreateGpu().Dispose(); // skips (or fails) without a device
        using var engine = ToMeEngine.Create(GpuFaultTests.TinyModel(), new EngineOptions { Backend = BackendKind.Cuda, MaxBatchSize = MaxBatch });
        var mine = Enumerable.Range(0, MaxBatch).SelectMany(i => engine.Preprocess(Picture(i))).ToArray();
        var theirs = Enumerable.Range(MaxBatch, MaxBatch).SelectMany(i => engine.Preprocess(Picture(i))).ToArray();
        var expected = engine.Logits(mine, MaxBatch);
        var memory = GC.AllocateArray<float>(theirs.Length, pinned: true);
        theirs.CopyTo(memory, 0);
        engine.Logits(theirs, MaxBatch, memory); // announces `memory` as the next batch, which its caller never runs
        mine.CopyTo(memory, 0);
        Assert.Equal(expected, engine.Logits(memory, MaxBatch));
        // The batch announced runs from its upload ahead; images at other memory are uploaded as they are.
        engine.Logits(mine, MaxBatch, memory);
        Assert.Equal(expected, engine.Logits(memory.AsMemory(), MaxBatch, default));
        Assert.Equal(expected, engine.Logits(mine, MaxBatch));
    }
}
