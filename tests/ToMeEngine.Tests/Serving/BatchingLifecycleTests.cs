using System.Diagnostics.Metrics;
using ToMe.Imaging;
using ToMe.Serving;

namespace ToMe.Tests.Serving;

/// <summary>
/// Cancellation, a full queue and disposal end requests with the documented exceptions, never a hang. A long queueing
/// delay holds requests in the batcher so that each case is deterministic: nothing runs until the test says so.
/// </summary>
public sealed class BatchingLifecycleTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);
    private static readonly RgbImage Image = new(32, 24);

    private static BatchingClassifier Holding(ToMeEngine engine, int maxQueue = 256) =>
        new(engine, new BatchingOptions { MaxBatchSize = 32, MaxQueueDelay = Long, MaxQueueLength = maxQueue }, ownsEngine: false);

    [Fact(Timeout = 30_000)]
    public async Task CancellingAWaitingRequestRemovesIt()
    {
        using var engine = ServingTestData.LoadEngine();
        using var classifier = Holding(engine);
        using var cts = new CancellationTokenSource();
        var kept = classifier.ClassifyAsync(Image, cancellationToken: TestContext.Current.CancellationToken);
        var cancelled = classifier.ClassifyAsync(Image, cancellationToken: cts.Token);
        Assert.Equal(2, classifier.QueueLength);
        cts.Cancel();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.Equal(1, classifier.QueueLength);
        Assert.False(kept.IsCompleted);
        Assert.Equal(1, classifier.Statistics.Cancelled);
    }

    [Fact(Timeout = 30_000)]
    public async Task AnAlreadyCancelledTokenIsNeverQueued()
    {
        using var engine = ServingTestData.LoadEngine();
        using var classifier = Holding(engine);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => classifier.ClassifyAsync(Image, cancellationToken: new CancellationToken(true)));
        Assert.Equal(0, classifier.QueueLength);
    }

    [Fact(Timeout = 30_000)]
    public async Task AFullQueueRejectsWithEngineOverloaded()
    {
        using var engine = ServingTestData.LoadEngine();
        var classifier = Holding(engine, maxQueue: 4);
        var waiting = Enumerable.Range(0, 4).Select(_ => classifier.ClassifyAsync(Image)).ToList();
        var e = await Assert.ThrowsAsync<EngineOverloadedException>(() => classifier.ClassifyAsync(Image, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(4, e.QueueLimit);
        Assert.Equal(1, classifier.Statistics.Rejected);
        Assert.Equal(4, classifier.QueueLength);
        classifier.Dispose();
        foreach (var t in waiting)
            await Assert.ThrowsAsync<ObjectDisposedException>(() => t);
    }

    [Fact(Timeout = 30_000)]
    public async Task DisposingEndsWaitingRequestsAndRefusesNewOnes()
    {
        using var engine = ServingTestData.LoadEngine();
        var classifier = Holding(engine);
        var waiting = Enumerable.Range(0, 10).Select(_ => classifier.ClassifyAsync(Image)).ToList();
        await classifier.DisposeAsync();
        foreach (var t in waiting)
            await Assert.ThrowsAsync<ObjectDisposedException>(() => t);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => classifier.ClassifyAsync(Image, cancellationToken: TestContext.Current.CancellationToken));
        classifier.Dispose(); // idempotent
    }

    [Fact(Timeout = 60_000)]
    public async Task DisposingUnderLoadEndsEveryRequest()
    {
        using var engine = ServingTestData.LoadEngine();
        var classifier = new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = 8, MaxQueueDelay = TimeSpan.Zero }, ownsEngine: false);
        var tasks = Enumerable.Range(0, 200).Select(_ => Task.Run(() => classifier.ClassifyAsync(Image))).ToList();
        while (classifier.Statistics.Batches == 0)
            await Task.Delay(1, TestContext.Current.CancellationToken);
        classifier.Dispose();
        int answered = 0, disposed = 0;
        foreach (var t in tasks)
        {
            try
            {
                await t;
                answered++;
            }
            catch (ObjectDisposedException)
            {
                disposed++;
            }
        }
        Assert.Equal(tasks.Count, answered + disposed);
        Assert.True(answered > 0);
    }

    [Fact]
    public void OptionsAreValidated()
    {
        using var engine = ServingTestData.LoadEngine();
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = 0 }, ownsEngine: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchingClassifier(engine, new BatchingOptions { MaxQueueLength = 0 }, ownsEngine: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchingClassifier(engine, new BatchingOptions { MaxQueueDelay = TimeSpan.FromSeconds(-1) }, ownsEngine: false));
        Assert.Single(engine.Classify(Image, 1)); // an engine it does not own is the caller's, as it was
    }

    /// <summary>
    /// An engine handed over to own is disposed when the classifier cannot be built: the caller, holding no classifier, has
    /// nothing to dispose it with (<c>new BatchingClassifier(ToMeEngine.Load(...))</c>, a container's factory retrying), and a
    /// GPU engine would keep its device memory.
    /// </summary>
    [Fact]
    public void AnOwnedEngineIsDisposedWhenTheClassifierCannotBeBuilt()
    {
        var engine = ServingTestData.LoadEngine();
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = 0 }));
        Assert.Throws<ObjectDisposedException>(() => engine.Classify(Image));
    }

    [Fact(Timeout = 60_000)]
    public async Task AThrowingMetricsListenerFailsTheBatchButNeverHangsItOrStopsTheClassifier()
    {
        using var metrics = new ServingMetrics();
        bool throwing = true;
        using var listener = new MeterListener
        {
            // Only this classifier's meter: other tests' classifiers run beside this one.
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == metrics.Meter)
                    l.EnableMeasurementEvents(instrument);
            },
        };
        // Recorded on the forward thread, after the forward pass: requests are admitted first.
        listener.SetMeasurementEventCallback<long>((instrument, _, _, _) =>
        {
            if (throwing && instrument.Name == "tome.batches")
                throw new InvalidOperationException("the listener broke");
        });
        listener.Start();
        using var engine = ServingTestData.LoadEngine();
        await using var classifier = new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = 2 }, ownsEngine: false, metrics: metrics);
        var ct = TestContext.Current.CancellationToken;

        var e = await Assert.ThrowsAnyAsync<Exception>(() => classifier.ClassifyAsync(Image, 1, ct));
        Assert.Contains("the listener broke", e.Message);
        throwing = false;
        Assert.Equal(engine.Classify(Image, 1)[0].ClassIndex, (await classifier.ClassifyAsync(Image, 1, ct))[0].ClassIndex);
    }
}
