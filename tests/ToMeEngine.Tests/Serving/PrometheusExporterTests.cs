using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using ToMe.Serving.Http;

namespace ToMe.Tests.Serving;

/// <summary>
/// The Prometheus text exporter behind <c>GET /metrics</c>: names, labels, the kinds of series and their values, read
/// through the OpenTelemetry SDK as the server reads them. Each test listens to a meter of its own only, so they run in
/// parallel with the rest.
/// </summary>
public sealed class PrometheusExporterTests
{
    /// <summary>The text one scrape answers, after <paramref name="record"/> used a fresh meter (named in the labels as "m").</summary>
    private static async Task<string[]> Scrape(Action<Meter> record, string? meterVersion = null)
    {
        var meterName = $"prom-test-{Guid.NewGuid():N}";
        var scraper = new PrometheusScraper();
        using var provider = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(ResourceBuilder.CreateEmpty())
            .AddMeter(meterName).AddReader(scraper.Reader).Build();
        using var meter = new Meter(meterName, meterVersion);
        record(meter);
        var text = await scraper.ScrapeAsync(TestContext.Current.CancellationToken) ?? throw new Xunit.Sdk.XunitException("scrape failed");
        return Encoding.UTF8.GetString(text).Replace(meterName, "m", StringComparison.Ordinal).Split('\n');
    }

    [Theory]
    [InlineData("tome.queue.time", "ms", false, "tome_queue_time_milliseconds")]
    [InlineData("http.server.request.duration", "s", false, "http_server_request_duration_seconds")]
    [InlineData("tome.requests", "{request}", true, "tome_requests_total")]
    [InlineData("io.read", "By", true, "io_read_bytes_total")]
    [InlineData("io.rate", "By/s", false, "io_rate_bytes_per_second")]
    [InlineData("cpu.utilization", "1", false, "cpu_utilization")]
    [InlineData("duration_seconds", "s", false, "duration_seconds")]
    [InlineData("jobs_total", null, true, "jobs_total")]
    [InlineData("a-b c..d__e", null, false, "a_b_c_d_e")]
    [InlineData("9lives", null, false, "_9lives")]
    [InlineData("ns:größe", null, false, "ns:gr_e")]
    [InlineData("temp", "{reading}Cel", false, "temp_celsius")]
    public void MetricNamesAreSanitizedAndCarryTheirUnit(string name, string? unit, bool counter, string expected) =>
        Assert.Equal(expected, PrometheusNames.Metric(name, unit, counter));

    [Theory]
    [InlineData("http.request.method", "http_request_method")]
    [InlineData("a:b", "a_b")]
    [InlineData("0day", "_0day")]
    [InlineData("__reserved", "_reserved")]
    public void LabelNamesAreSanitized(string key, string expected) => Assert.Equal(expected, PrometheusNames.Label(key));

    [Fact]
    public async Task CountersEndInTotalAndNameTheirMeter()
    {
        var lines = await Scrape(meter =>
        {
            var requests = meter.CreateCounter<long>("app.requests", "{request}", "requests seen");
            requests.Add(2);
            requests.Add(3);
            meter.CreateCounter<double>("app.busy", "s").Add(0.25);
        }, meterVersion: "1.2");
        Assert.Contains("# HELP app_requests_total requests seen", lines);
        Assert.Contains("# TYPE app_requests_total counter", lines);
        Assert.Contains("app_requests_total{otel_scope_name=\"m\",otel_scope_version=\"1.2\"} 5", lines);
        Assert.Contains("# TYPE app_busy_seconds_total counter", lines);
        Assert.Contains("app_busy_seconds_total{otel_scope_name=\"m\",otel_scope_version=\"1.2\"} 0.25", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("# HELP app_busy", StringComparison.Ordinal)); // no description, no HELP
    }

    [Fact]
    public async Task HistogramBucketsAreCumulativeAndEndAtInfinity()
    {
        var lines = await Scrape(meter =>
        {
            var latency = meter.CreateHistogram("app.latency", "ms", "time taken", tags: null,
                new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 10, 100] });
            foreach (var value in new[] { 0.5, 5, 5, 50, 500, 1000 })
                latency.Record(value, new KeyValuePair<string, object?>("route", "/x"));
        });
        var series = lines.Where(l => l.StartsWith("app_latency_milliseconds", StringComparison.Ordinal)).ToArray();
        const string labels = "otel_scope_name=\"m\",route=\"/x\"";
        Assert.Equal(
        [
            $"app_latency_milliseconds_bucket{{{labels},le=\"1\"}} 1",
            $"app_latency_milliseconds_bucket{{{labels},le=\"10\"}} 3",
            $"app_latency_milliseconds_bucket{{{labels},le=\"100\"}} 4",
            $"app_latency_milliseconds_bucket{{{labels},le=\"+Inf\"}} 6",
            $"app_latency_milliseconds_sum{{{labels}}} 1560.5",
            $"app_latency_milliseconds_count{{{labels}}} 6",
        ], series);
        Assert.Contains("# TYPE app_latency_milliseconds histogram", lines);
    }

    [Fact]
    public async Task UpDownCountersAndGaugesAreGauges()
    {
        var lines = await Scrape(meter =>
        {
            var inFlight = meter.CreateUpDownCounter<long>("app.in_flight");
            inFlight.Add(5);
            inFlight.Add(-2);
            meter.CreateObservableGauge("app.temperature", () => -7.5, "Cel");
        });
        Assert.Contains("# TYPE app_in_flight gauge", lines);
        Assert.Contains("app_in_flight{otel_scope_name=\"m\"} 3", lines);
        Assert.Contains("# TYPE app_temperature_celsius gauge", lines);
        Assert.Contains("app_temperature_celsius{otel_scope_name=\"m\"} -7.5", lines);
    }

    [Fact]
    public async Task LabelValuesAndHelpAreEscaped()
    {
        var lines = await Scrape(meter => meter.CreateCounter<long>("app.hits", description: "one\\two\nthree \"quoted\"")
            .Add(1, new("path", "C:\\dir \"name\"\nnext"), new("ok", true), new("9code", 404)));
        Assert.Contains("# HELP app_hits_total one\\\\two\\nthree \"quoted\"", lines);
        Assert.Contains("app_hits_total{otel_scope_name=\"m\",_9code=\"404\",ok=\"true\",path=\"C:\\\\dir \\\"name\\\"\\nnext\"} 1", lines);
    }

    [Fact]
    public async Task KeysThatSanitizeAlikeShareOneLabel()
    {
        var lines = await Scrape(meter => meter.CreateCounter<long>("app.hits").Add(1, new("a.b", "x"), new("a_b", "y")));
        Assert.Contains("app_hits_total{otel_scope_name=\"m\",a_b=\"x;y\"} 1", lines);
    }

    [Fact]
    public async Task AMeterWithNothingRecordedHasNoSeries()
    {
        var lines = await Scrape(meter =>
        {
            meter.CreateCounter<long>("app.requests", description: "never added to");
            meter.CreateHistogram<double>("app.latency", "ms");
        });
        Assert.All(lines, l => Assert.Equal("", l));
    }

    [Fact]
    public async Task TheResourceIsTargetInfo()
    {
        var scraper = new PrometheusScraper();
        using var provider = Sdk.CreateMeterProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService("svc \"a\"", serviceVersion: "3"))
            .AddReader(scraper.Reader).Build();
        var text = Encoding.UTF8.GetString((await scraper.ScrapeAsync(TestContext.Current.CancellationToken))!);
        Assert.Contains("# TYPE target_info gauge\n", text);
        Assert.Matches("\ntarget_info\\{service_name=\"svc \\\\\"a\\\\\"\",service_version=\"3\",service_instance_id=\"[^\"]+\"\\} 1\n", text);
    }

    [Fact]
    public async Task ConcurrentScrapesEachSeeOneWholeExposition()
    {
        var meterName = $"prom-test-{Guid.NewGuid():N}";
        var scraper = new PrometheusScraper();
        using var provider = Sdk.CreateMeterProviderBuilder().AddMeter(meterName).AddReader(scraper.Reader).Build();
        using var meter = new Meter(meterName);
        var counter = meter.CreateCounter<long>("app.ticks");
        counter.Add(1); // a counter is exported once it has a measurement; the recorder below may start after the scrapes
        var ct = TestContext.Current.CancellationToken;
        using var stop = new CancellationTokenSource();
        var recorder = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
                counter.Add(1);
        }, ct);
        var scrapes = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() => scraper.ScrapeAsync(ct), ct)));
        await stop.CancelAsync();
        await recorder;
        foreach (var bytes in scrapes)
        {
            var lines = Encoding.UTF8.GetString(bytes!).Split('\n');
            Assert.Single(lines, l => l == "# TYPE app_ticks_total counter");
            Assert.Single(lines, l => l.StartsWith("app_ticks_total{", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task AScrapeAfterShutdownFails()
    {
        var scraper = new PrometheusScraper();
        var provider = Sdk.CreateMeterProviderBuilder().AddReader(scraper.Reader).Build();
        provider.Dispose();
        Assert.Null(await scraper.ScrapeAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public void MappingTheEndpointWithoutTheReaderSaysWhatToRegister()
    {
        var app = WebApplication.CreateSlimBuilder().Build();
        var error = Assert.Throws<InvalidOperationException>(() => app.MapPrometheusMetrics());
        Assert.Contains("AddPrometheusTextExporter", error.Message);
    }
}
