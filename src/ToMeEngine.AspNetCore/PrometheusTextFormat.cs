using System.Globalization;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ToMe.Serving.Http;

/// <summary>
/// Writes cumulative OpenTelemetry metrics in the Prometheus text exposition format 0.0.4: <c># HELP</c> and <c># TYPE</c>
/// per metric family, counters as <c>counter</c> (<c>_total</c>), gauges and up-down counters as <c>gauge</c>, explicit
/// bucket histograms as <c>histogram</c> (cumulative <c>_bucket{le=...}</c> through <c>le="+Inf"</c>, <c>_sum</c>,
/// <c>_count</c>). Every series carries its meter as <c>otel_scope_name</c> (and <c>otel_scope_version</c>), and the
/// resource is the <c>target_info</c> series, as OpenTelemetry's Prometheus exporter wrote them. Exponential
/// histograms have no 0.0.4 form and are left out.
/// </summary>
internal static class PrometheusTextFormat
{
    /// <summary>The response's content type.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private enum Family { Counter, Gauge, Histogram }

    /// <summary>Appends <paramref name="metrics"/> (read while their collection is current) and the resource.</summary>
    public static void Write(StringBuilder text, IEnumerable<Metric> metrics, Resource? resource)
    {
        WriteTargetInfo(text, resource);
        // Every sample of one name must follow that name's single TYPE line, and instruments of two meters may share a name.
        var families = new SortedDictionary<string, List<(Metric Metric, Family Family)>>(StringComparer.Ordinal);
        foreach (var metric in metrics)
        {
            if (FamilyOf(metric.MetricType) is not { } family)
                continue;
            var name = PrometheusNames.Metric(metric.Name, metric.Unit, family == Family.Counter);
            if (!families.TryGetValue(name, out var members))
                families.Add(name, members = []);
            members.Add((metric, family));
        }
        foreach (var (name, members) in families)
        {
            var (first, family) = members[0];
            int start = text.Length;
            if (!string.IsNullOrEmpty(first.Description))
                text.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(first.Description)).Append('\n');
            text.Append("# TYPE ").Append(name).Append(' ').Append(family.ToString().ToLowerInvariant()).Append('\n');
            int header = text.Length;
            // A second instrument of another kind under the same name cannot share the TYPE line: the first one's kind wins.
            foreach (var (metric, _) in members.Where(m => m.Family == family))
                WriteSamples(text, name, metric, family);
            if (text.Length == header)
                text.Length = start; // an instrument with nothing recorded yet has no series
        }
    }

    private static Family? FamilyOf(MetricType type) => type switch
    {
        MetricType.LongSum or MetricType.DoubleSum => Family.Counter,
        MetricType.LongGauge or MetricType.DoubleGauge or MetricType.LongSumNonMonotonic or MetricType.DoubleSumNonMonotonic => Family.Gauge,
        MetricType.Histogram => Family.Histogram,
        _ => null,
    };

    private static void WriteSamples(StringBuilder text, string name, Metric metric, Family family)
    {
        bool isLong = metric.MetricType.IsLong();
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            var labels = Labels(metric, point.Tags);
            switch (family)
            {
                case Family.Counter:
                    Sample(text, name, labels, isLong ? Number(point.GetSumLong()) : Number(point.GetSumDouble()));
                    break;
                case Family.Gauge:
                    Sample(text, name, labels, metric.MetricType switch
                    {
                        MetricType.LongGauge => Number(point.GetGaugeLastValueLong()),
                        MetricType.DoubleGauge => Number(point.GetGaugeLastValueDouble()),
                        _ => isLong ? Number(point.GetSumLong()) : Number(point.GetSumDouble()),
                    });
                    break;
                case Family.Histogram:
                    WriteHistogram(text, name, labels, point);
                    break;
            }
        }
    }

    private static void WriteHistogram(StringBuilder text, string name, string labels, in MetricPoint point)
    {
        // The SDK counts each bucket alone; Prometheus buckets count everything at or below their bound.
        long cumulative = 0;
        bool infinity = false;
        var prefix = labels.Length == 0 ? "le=\"" : labels + ",le=\"";
        foreach (var bucket in point.GetHistogramBuckets())
        {
            cumulative += bucket.BucketCount;
            infinity = double.IsPositiveInfinity(bucket.ExplicitBound);
            Sample(text, name + "_bucket", prefix + Number(bucket.ExplicitBound) + "\"", Number(cumulative));
        }
        long count = point.GetHistogramCount();
        if (!infinity)
            Sample(text, name + "_bucket", prefix + "+Inf\"", Number(count));
        Sample(text, name + "_sum", labels, Number(point.GetHistogramSum()));
        Sample(text, name + "_count", labels, Number(count));
    }

    private static void Sample(StringBuilder text, string name, string labels, string value)
    {
        text.Append(name);
        if (labels.Length > 0)
            text.Append('{').Append(labels).Append('}');
        text.Append(' ').Append(value).Append('\n');
    }

    /// <summary>The series' labels, without braces: the meter's, then the point's tags.</summary>
    private static string Labels(Metric metric, ReadOnlyTagCollection tags)
    {
        var pairs = new List<KeyValuePair<string, object?>> { new("otel_scope_name", metric.MeterName) };
        if (!string.IsNullOrEmpty(metric.MeterVersion))
            pairs.Add(new("otel_scope_version", metric.MeterVersion));
        var pointTags = new List<KeyValuePair<string, object?>>(tags.Count);
        foreach (var tag in tags)
            pointTags.Add(tag);
        pairs.AddRange(pointTags.OrderBy(t => t.Key, StringComparer.Ordinal));
        return FormatLabels(pairs);
    }

    private static void WriteTargetInfo(StringBuilder text, Resource? resource)
    {
        if (resource is null || !resource.Attributes.Any())
            return;
        text.Append("# HELP target_info Target metadata\n# TYPE target_info gauge\n");
        Sample(text, "target_info", FormatLabels(resource.Attributes!), "1");
    }

    /// <summary>
    /// <c>name="value",...</c>. Keys that sanitize to one label name (<c>a.b</c>, <c>a_b</c>) share it, their values
    /// joined by <c>;</c> as the specification asks: a repeated label name would fail the whole scrape.
    /// </summary>
    internal static string FormatLabels(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var labels = new List<(string Name, string Value)>();
        foreach (var (key, value) in pairs)
        {
            var name = PrometheusNames.Label(key);
            int same = labels.FindIndex(l => l.Name == name);
            if (same < 0)
                labels.Add((name, ValueText(value)));
            else
                labels[same] = (name, labels[same].Value + ";" + ValueText(value));
        }
        return string.Join(',', labels.Select(l => $"{l.Name}=\"{EscapeLabelValue(l.Value)}\""));
    }

    private static string ValueText(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        double d => Number(d),
        System.Collections.IEnumerable items => "[" + string.Join(',', items.Cast<object?>().Select(ValueText)) + "]",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>A label value with <c>\</c>, <c>"</c> and line feeds escaped.</summary>
    internal static string EscapeLabelValue(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>A HELP text with <c>\</c> and line feeds escaped (quotes stay as they are there).</summary>
    internal static string EscapeHelp(string help) =>
        help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    internal static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The shortest text that reads back as the same double; infinities and NaN as Prometheus spells them.</summary>
    internal static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);
}
