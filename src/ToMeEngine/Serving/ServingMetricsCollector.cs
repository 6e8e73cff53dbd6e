using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ToMe.Serving;

/// <summary>Count, sum, minimum and maximum of a histogram's recordings since the collector started.</summary>
/// <param name="Count">Recordings.</param>
/// <param name="Sum">Their sum, in the instrument's unit (images, or milliseconds).</param>
/// <param name="Min">The smallest recording.</param>
/// <param name="Max">The largest recording.</param>
public sealed record HistogramSummary(long Count, double Sum, double Min, double Max)
{
    /// <summary>The mean recording; 0 before any.</summary>
    public double Mean => Count == 0 ? 0 : Sum / Count;
}

/// <summary>The values of <see cref="ServingMetrics"/> at one moment.</summary>
/// <param name="UptimeSeconds">Seconds since the collector started.</param>
/// <param name="Counters">Each counter's total by instrument name (<c>tome.requests</c>, <c>tome.images</c>, ...).</param>
/// <param name="Histograms">Each histogram's summary by instrument name (<c>tome.batch.size</c>, <c>tome.queue.time</c>, <c>tome.forward.time</c>).</param>
/// <param name="Gauges">Each gauge's last value by instrument name (<c>tome.queue.length</c>).</param>
public sealed record MetricsSnapshot(
    double UptimeSeconds,
    IReadOnlyDictionary<string, long> Counters,
    IReadOnlyDictionary<string, HistogramSummary> Histograms,
    IReadOnlyDictionary<string, double> Gauges)
{
    /// <summary>Images forwarded per second since the collector started.</summary>
    public double ImagesPerSecond => UptimeSeconds > 0 && Counters.TryGetValue("tome.images", out var n) ? n / UptimeSeconds : 0;
}

/// <summary>
/// Aggregates the measurements of one <see cref="ServingMetrics"/> meter in process: a snapshot for a host without an
/// OpenTelemetry exporter, or for tests (the HTTP service exports through OpenTelemetry instead). Listens only to that meter instance, so several services in one process stay apart. Thread-safe.
/// </summary>
public sealed class ServingMetricsCollector : IDisposable
{
    private readonly MeterListener listener = new();
    private readonly Dictionary<string, long> counters = new();
    private readonly Dictionary<string, HistogramSummary> histograms = new();
    private readonly Dictionary<string, double> gauges = new();
    private readonly long started = Stopwatch.GetTimestamp();
    private readonly object gate = new();

    /// <summary>Starts collecting <paramref name="metrics"/>' measurements (those recorded from now on).</summary>
    public ServingMetricsCollector(ServingMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter))
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((i, v, _, _) => Record(i, v));
        listener.SetMeasurementEventCallback<int>((i, v, _, _) => Record(i, v));
        listener.SetMeasurementEventCallback<double>((i, v, _, _) => Record(i, v));
        listener.Start();
    }

    private void Record(Instrument instrument, double value)
    {
        lock (gate)
        {
            switch (instrument)
            {
                case Counter<long>:
                    counters[instrument.Name] = counters.GetValueOrDefault(instrument.Name) + (long)value;
                    break;
                case Histogram<int> or Histogram<double>:
                    histograms[instrument.Name] = histograms.TryGetValue(instrument.Name, out var h)
                        ? new HistogramSummary(h.Count + 1, h.Sum + value, Math.Min(h.Min, value), Math.Max(h.Max, value))
                        : new HistogramSummary(1, value, value, value);
                    break;
                default:
                    gauges[instrument.Name] = value;
                    break;
            }
        }
    }

    /// <summary>The current values; observable gauges are read now.</summary>
    public MetricsSnapshot Snapshot()
    {
        listener.RecordObservableInstruments();
        lock (gate)
            return new MetricsSnapshot(Stopwatch.GetElapsedTime(started).TotalSeconds,
                new Dictionary<string, long>(counters), new Dictionary<string, HistogramSummary>(histograms), new Dictionary<string, double>(gauges));
    }

    /// <summary>Stops collecting; the snapshots already taken stay valid.</summary>
    public void Dispose() => listener.Dispose();
}
