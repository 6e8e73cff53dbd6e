using ToMe.Merging;
using ToMe.Serving;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The serving batcher on the emulated CUDA device with <see cref="BatchingOptions.UploadAhead"/>: a full batch waiting as
/// a forward starts is taken ahead and uploaded during it. Answers equal those without it, the staged upload is used, and
/// cancellation keeps its meaning: a request taken ahead and cancelled before its own forward never runs and ends
/// cancelled; one whose forward has started completes; disposal ends requests taken ahead like every waiting one.
/// The forward thread's hook (<see cref="BatchingClassifier.BeforeForward"/>) fixes the interleavings.
/// </summary>
[Collection(nameof(EmulatorAloneCollection))]
public sealed class BatchingUploadAheadTests
{
    private const int MaxBatch = 2, Count = 7;

    private static ToMeEngine Engine(bool graphs) => ToMeEngine.Create(GpuFaultTests.TinyModel(), new EngineOptions
    {
        Backend = BackendKind.Cuda, MaxBatchSize = MaxBatch, Schedule = MergeSchedule.Constant(2), CudaGraphs = graphs,
    });

    private static float[][] Tensors(ToMeEngine engine) => Enumerable.Range(0, Count).Select(i =>
    {
        var rng = new Random(300 + i);
        return Enumerable.Range(0, 3 * engine.Config.ImageSize * engine.Config.ImageSize).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
    }).ToArray();

    /// <summary>Each image alone through the engine (rows of a batch are computed independently).</summary>
    private static IReadOnlyList<Prediction>[] Expected(ToMeEngine engine, float[][] tensors) =>
        tensors.Select(t => engine.TopK(engine.Logits(t, 1), 3)).ToArray();

    /// <summary>
    /// Request 0 runs alone; while its forward runs, requests 1..6 queue. Then [1, 2] runs with [3, 4] taken ahead, [3, 4]
    /// with [5, 6] taken ahead, then [5, 6]. <paramref name="onForward"/> sees each forward's index (0-based) first.
    /// </summary>
    private static async Task<(Task<IReadOnlyList<Prediction>>[] Tasks, BatchingClassifier Classifier)> Run(ToMeEngine engine, float[][] tensors,
        bool uploadAhead, Action<int, BatchingClassifier>? onForward = null, CancellationToken[]? tokens = null)
    {
        var classifier = new BatchingClassifier(engine, new BatchingOptions
        {
            MaxBatchSize = MaxBatch, MaxQueueDelay = TimeSpan.FromSeconds(5), UploadAhead = uploadAhead,
        }, ownsEngine: false);
        var firstRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var othersQueued = new ManualResetEventSlim();
        int forwards = 0;
        classifier.BeforeForward = n =>
        {
            int index = forwards++;
            if (index == 0)
            {
                firstRunning.SetResult();
                othersQueued.Wait(TimeSpan.FromSeconds(30));
            }
            onForward?.Invoke(index, classifier);
        };
        var tasks = new Task<IReadOnlyList<Prediction>>[Count];
        tasks[0] = classifier.ClassifyAsync(ImageInput.FromTensor(tensors[0]), 3, tokens?[0] ?? default);
        await firstRunning.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        for (int i = 1; i < Count; i++)
            tasks[i] = classifier.ClassifyAsync(ImageInput.FromTensor(tensors[i]), 3, tokens?[i] ?? default);
        othersQueued.Set();
        await Task.WhenAll(tasks).ContinueWith(_ => { }, TestContext.Current.CancellationToken);
        return (tasks, classifier);
    }

    [Fact]
    public void OnlyTheBackendThatStagesInputsTakesTheNextBatch()
    {
        // With graphs on or off the CUDA backend stages the next batch's upload; the CPU backend would ignore it, so the
        // batcher must not hold requests back for it.
        foreach (bool graphs in new[] { true, false })
        {
            using var cuda = Engine(graphs);
            Assert.True(cuda.TakesNextBatch);
        }
        using var cpu = ToMeEngine.Create(GpuFaultTests.TinyModel(), new EngineOptions { Backend = BackendKind.Cpu, MaxBatchSize = MaxBatch });
        Assert.False(cpu.TakesNextBatch);
    }

    [Theory(Timeout = 120_000)]
    [InlineData(true)]
    [InlineData(false)] // graphs off: every forward op by op, the upload still staged ahead
    public async Task UploadAheadGivesTheSameAnswersAndUsesTheStagedUploads(bool graphs)
    {
        BackendPair.CreateGpu().Dispose(); // skips (or fails) without a device
        using var engine = Engine(graphs);
        var tensors = Tensors(engine);
        var expected = Expected(engine, tensors);
        foreach (var uploadAhead in new[] { false, true })
        {
            long before = engine.CudaGraphStatistics!.Prefetched;
            var (tasks, classifier) = await Run(engine, tensors, uploadAhead);
            classifier.Dispose(); // joins the forward thread: the counts are final
            for (int i = 0; i < Count; i++)
                Assert.Equal(expected[i], await tasks[i]);
            Assert.Equal(new BatchingStatistics(Count, Count, 0, 0, 0, 4, Count), classifier.Statistics);
            // [3, 4] and [5, 6] were uploaded during the forward before theirs.
            Assert.Equal(uploadAhead ? 2 : 0, engine.CudaGraphStatistics!.Prefetched - before);
            Assert.Equal(0, engine.CudaGraphStatistics!.Failures);
        }
    }

    /// <summary>
    /// Request 3 is taken ahead during forward 1 ([1, 2]) and runs in forward 2 ([3, 4]). Cancelled during forward 1, it
    /// never runs and ends cancelled: 4 runs with 5 (the batch taken ahead lost a member, so it was filled from the queue
    /// and copied anew, not replayed from the staged upload), then 6. Cancelled during forward 2, it completes.
    /// </summary>
    [Theory(Timeout = 120_000)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task ARequestTakenAheadIsCancellableUntilItsForwardStarts(int cancelDuringForward)
    {
        BackendPair.CreateGpu().Dispose();
        using var engine = Engine(graphs: true);
        var tensors = Tensors(engine);
        var expected = Expected(engine, tensors);
        using var cancel3 = new CancellationTokenSource();
        var tokens = new CancellationToken[Count];
        tokens[3] = cancel3.Token;
        long before = engine.CudaGraphStatistics!.Prefetched;
        var (tasks, classifier) = await Run(engine, tensors, uploadAhead: true, (index, c) =>
        {
            if (index == cancelDuringForward)
                cancel3.Cancel();
        }, tokens);
        classifier.Dispose(); // joins the forward thread: the counts are final
        bool ran = cancelDuringForward == 2;
        if (!ran)
        {
            var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => tasks[3]);
            Assert.Equal(cancel3.Token, e.CancellationToken);
        }
        for (int i = 0; i < Count; i++)
            if (ran || i != 3)
                Assert.Equal(expected[i], await tasks[i]);
        int done = ran ? Count : Count - 1;
        Assert.Equal(new BatchingStatistics(Count, done, 0, Count - done, 0, 4, done), classifier.Statistics);
        Assert.Equal(ran ? 2 : 0, engine.CudaGraphStatistics!.Prefetched - before);
    }

    [Fact(Timeout = 120_000)]
    public async Task DisposalEndsRequestsTakenAheadAsWaitingOnes()
    {
        BackendPair.CreateGpu().Dispose();
        using var engine = Engine(graphs: true);
        var tensors = Tensors(engine);
        var expected = Expected(engine, tensors);
        // Disposed while [1, 2] runs with [3, 4] taken ahead and [5, 6] queued: [1, 2] delivers, the rest end disposed.
        var (tasks, classifier) = await Run(engine, tensors, uploadAhead: true, (index, c) =>
        {
            if (index == 1)
                c.Dispose(); // on the forward thread: it does not wait for itself
        });
        foreach (int i in new[] { 0, 1, 2 })
            Assert.Equal(expected[i], await tasks[i]);
        foreach (int i in new[] { 3, 4, 5, 6 })
            await Assert.ThrowsAsync<ObjectDisposedException>(() => tasks[i]);
        Assert.Equal(3, classifier.Statistics.Completed);
        // The engine (not owned) still serves.
        Assert.Equal(expected[6], engine.TopK(engine.Logits(tensors[6], 1), 3));
    }

    /// <summary>
    /// Cancellations at random moments against a busy batcher: every request either ends cancelled (its own token fired)
    /// or answers as the image alone would; the counts add up and nothing hangs.
    /// </summary>
    [Fact(Timeout = 180_000)]
    public async Task RandomCancellationsUnderLoadEndEveryRequestExactlyOnce()
    {
        BackendPair.CreateGpu().Dispose();
        using var engine = Engine(graphs: true);
        var tensors = Tensors(engine);
        var expected = Expected(engine, tensors);
        using var classifier = new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = MaxBatch, MaxQueueDelay = TimeSpan.Zero }, ownsEngine: false);
        const int Requests = 60;
        var rng = new Random(5);
        var sources = Enumerable.Range(0, Requests).Select(_ => new CancellationTokenSource()).ToArray();
        var tasks = new Task<IReadOnlyList<Prediction>>[Requests];
        for (int i = 0; i < Requests; i++)
        {
            tasks[i] = classifier.ClassifyAsync(ImageInput.FromTensor(tensors[i % Count]), 3, sources[i].Token);
            if (rng.Next(3) == 0)
                sources[rng.Next(i + 1)].Cancel();
            if (rng.Next(4) == 0)
                await Task.Delay(rng.Next(3), TestContext.Current.CancellationToken);
        }
        await Task.WhenAll(tasks).ContinueWith(_ => { }, TestContext.Current.CancellationToken);
        classifier.Dispose();
        int completed = 0, cancelled = 0;
        for (int i = 0; i < Requests; i++)
        {
            if (tasks[i].IsCanceled)
            {
                Assert.True(sources[i].IsCancellationRequested, $"request {i} ended cancelled without being cancelled");
                cancelled++;
            }
            else
            {
                Assert.Equal(expected[i % Count], await tasks[i]);
                completed++;
            }
        }
        var stats = classifier.Statistics;
        Assert.Equal((long)completed, stats.Completed);
        Assert.Equal((long)cancelled, stats.Cancelled);
        Assert.Equal(stats.Completed, stats.Images);
        Assert.True(cancelled > 0 && completed > 0, $"{cancelled} cancelled, {completed} completed");
        foreach (var s in sources)
            s.Dispose();
    }
}
