using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace ToMe.Serving;

/// <summary>
/// The instruments of the Meter <c>"ToMeEngine"</c>, shared by every classifier built with it (one per service):
/// <list type="bullet">
/// <item><c>tome.requests</c>, <c>tome.requests.rejected</c>, <c>tome.requests.cancelled</c>, <c>tome.requests.failed</c> (counters)</item>
/// <item><c>tome.images</c> and <c>tome.batches</c> (counters: images forwarded, forward passes)</item>
/// <item><c>tome.batch.size</c> (histogram, images), <c>tome.queue.time</c> and <c>tome.forward.time</c> (histograms, ms)</item>
/// <item><c>tome.queue.length</c> (gauge: requests waiting over all classifiers)</item>
/// </list>
/// Read them with any <see cref="MeterListener"/> or OpenTelemetry, or with <see cref="ServingMetricsCollector"/>. Thread-safe.
/// </summary>
public sealed class ServingMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "ToMeEngine";

    private readonly bool ownsMeter;
    private readonly ConcurrentDictionary<BatchingClassifier, byte> queues = new();

    /// <param name="meterFactory">Creates the meter (dependency injection provides one); null creates a meter this object owns.</param>
    public ServingMetrics(IMeterFactory? meterFactory = null)
    {
        ownsMeter = meterFactory is null;
        Meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Requests = Meter.CreateCounter<long>("tome.requests", "{request}", "requests admitted to a queue");
        Rejected = Meter.CreateCounter<long>("tome.requests.rejected", "{request}", "requests refused because the queue was full");
        Cancelled = Meter.CreateCounter<long>("tome.requests.cancelled", "{request}", "requests cancelled before they ran");
        Failed = Meter.CreateCounter<long>("tome.requests.failed", "{request}", "requests that failed (bad image, forward error, disposal)");
        Images = Meter.CreateCounter<long>("tome.images", "{image}", "images forwarded");
        Batches = Meter.CreateCounter<long>("tome.batches", "{batch}", "forward passes run");
        // Bucket boundaries for exporters that histogram (Prometheus, OTLP): batch sizes are small powers of two, times span
        // sub-millisecond queueing to multi-second CPU batches.
        BatchSize = Meter.CreateHistogram("tome.batch.size", "{image}", "images per forward pass", tags: null,
            new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
        var milliseconds = new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] };
        QueueTime = Meter.CreateHistogram("tome.queue.time", "ms", "time from admission to the start of the request's forward pass", tags: null, milliseconds);
        ForwardTime = Meter.CreateHistogram("tome.forward.time", "ms", "duration of one batched forward pass", tags: null, milliseconds);
        Meter.CreateObservableGauge("tome.queue.length", () => queues.Keys.Sum(q => q.QueueLength), "{request}", "requests waiting to be batched");
    }

    /// <summary>The meter the instruments belong to (filter a <see cref="MeterListener"/> on it).</summary>
    public Meter Meter { get; }

    internal Counter<long> Requests { get; }
    internal Counter<long> Rejected { get; }
    internal Counter<long> Cancelled { get; }
    internal Counter<long> Failed { get; }
    internal Counter<long> Images { get; }
    internal Counter<long> Batches { get; }
    internal Histogram<int> BatchSize { get; }
    internal Histogram<double> QueueTime { get; }
    internal Histogram<double> ForwardTime { get; }

    internal void Track(BatchingClassifier classifier) => queues.TryAdd(classifier, 0);

    internal void Untrack(BatchingClassifier classifier) => queues.TryRemove(classifier, out _);

    /// <summary>Disposes the meter when this object created it (no factory given); a factory's meter is the factory's to dispose.</summary>
    public void Dispose()
    {
        if (ownsMeter)
            Meter.Dispose();
    }
}
