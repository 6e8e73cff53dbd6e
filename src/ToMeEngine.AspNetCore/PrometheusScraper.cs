using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace ToMe.Serving.Http;

/// <summary>
/// A pull reader of the OpenTelemetry SDK whose collection a scrape starts: <see cref="ScrapeAsync"/> collects the
/// metrics (cumulative, as Prometheus expects) and answers them as Prometheus text (<see cref="PrometheusTextFormat"/>).
/// Scrapes take turns, each collecting once; instruments keep recording meanwhile, so a scrape never holds up a
/// classification. Add <see cref="Reader"/> to one meter provider.
/// </summary>
internal sealed class PrometheusScraper
{
    /// <summary>Longest a collection may take before the scrape answers that it failed.</summary>
    private const int CollectTimeoutMilliseconds = 10_000;

    private readonly TextExporter exporter = new();
    private readonly SemaphoreSlim turn = new(1, 1);

    public PrometheusScraper()
    {
        Reader = new BaseExportingMetricReader(exporter) { TemporalityPreference = MetricReaderTemporalityPreference.Cumulative };
    }

    /// <summary>The reader to add to the meter provider (it owns the reader from then on).</summary>
    public MetricReader Reader { get; }

    /// <summary>The metrics as UTF-8 Prometheus text; null when they could not be collected (no provider, or it is shut down).</summary>
    public async Task<byte[]?> ScrapeAsync(CancellationToken cancellationToken = default)
    {
        await turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The exporter writes its text during Collect, on this thread; the turn keeps another scrape from overwriting it.
            exporter.Text = null;
            return exporter.Collect is { } collect && collect(CollectTimeoutMilliseconds) ? exporter.Text ?? [] : null;
        }
        finally
        {
            turn.Release();
        }
    }

    /// <summary>
    /// Pull only: the SDK collects for it only inside <see cref="IPullMetricExporter.Collect"/>, so a provider's
    /// ForceFlush or shutdown does not format text nobody reads.
    /// </summary>
    [ExportModes(ExportModes.Pull)]
    private sealed class TextExporter : BaseExporter<Metric>, IPullMetricExporter
    {
        public Func<int, bool>? Collect { get; set; }

        public byte[]? Text { get; set; }

        public override ExportResult Export(in Batch<Metric> batch)
        {
            var metrics = new List<Metric>();
            foreach (var metric in batch)
                metrics.Add(metric);
            var text = new StringBuilder();
            PrometheusTextFormat.Write(text, metrics, ParentProvider?.GetResource());
            Text = Encoding.UTF8.GetBytes(text.ToString());
            return ExportResult.Success;
        }
    }
}
