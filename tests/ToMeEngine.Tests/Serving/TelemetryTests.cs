using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using ToMe.Serving;
using ToMe.Serving.Http;

namespace ToMe.Tests.Serving;

/// <summary>
/// OpenTelemetry: Prometheus text at /metrics, activities per request and per batch, OTLP export to a collector. Meter and
/// activity listeners see the whole process, so these run alone, after the parallel tests.
/// </summary>
[Collection(nameof(Reliability.SoakCollection))]
public sealed class TelemetryTests
{
    /// <summary>Value of the Prometheus sample whose name and labels start with <paramref name="prefix"/>.</summary>
    private static double Sample(string text, string prefix)
    {
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no sample {prefix} in:\n{text}");
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact(Timeout = 60_000)]
    public async Task MetricsArePrometheusTextWithRequestBatchAndLatencySeries()
    {
        var encoded = ServingTestData.Encoded();
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine());
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;
        foreach (var image in encoded)
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/classify", new ByteArrayContent(image), ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync("/classify", new ByteArrayContent([1, 2, 3]), ct)).StatusCode);

        var response = await client.GetAsync("/metrics", ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var text = await response.Content.ReadAsStringAsync(ct);
        Assert.Contains("# TYPE tome_requests_total counter", text);
        Assert.Equal(encoded.Length + 1, Sample(text, "tome_requests_total"));
        Assert.Equal(1, Sample(text, "tome_requests_failed_total"));
        Assert.Equal(encoded.Length, Sample(text, "tome_images_total"));
        Assert.True(Sample(text, "tome_batches_total") >= 1);
        Assert.Contains("# TYPE tome_forward_time_milliseconds histogram", text);
        Assert.Equal(Sample(text, "tome_batches_total"), Sample(text, "tome_forward_time_milliseconds_count"));
        Assert.Equal(encoded.Length, Sample(text, "tome_batch_size_sum"));
        Assert.Equal(encoded.Length, Sample(text, "tome_queue_time_milliseconds_count"));
        Assert.Contains("tome_queue_length", text);
        // ASP.NET Core's request latency, per route and status.
        Assert.Contains("http_server_request_duration_seconds_bucket{", text);
        Assert.Contains("http_route=\"/classify\"", text);
    }

    [Fact(Timeout = 60_000)]
    public async Task EachRequestAndEachBatchIsAnActivityAndBatchesLinkTheirRequests()
    {
        var activities = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == ServingTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        using var engine = ServingTestData.LoadEngine();
        await using var classifier = new BatchingClassifier(engine, new BatchingOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(50) }, ownsEngine: false);
        using var parent = new Activity("test request").Start();
        var encoded = ServingTestData.Encoded();
        await Task.WhenAll(encoded.Select(b => classifier.ClassifyAsync(b)));
        parent.Stop();

        var requests = activities.Where(a => a.OperationName == "tome.classify" && a.TraceId == parent.TraceId).ToList();
        Assert.Equal(encoded.Length, requests.Count);
        Assert.All(requests, r => Assert.Equal(parent.SpanId, r.ParentSpanId));
        var linked = requests.Select(r => r.SpanId).ToHashSet();
        var batches = activities.Where(a => a.OperationName == "tome.batch" && a.Links.Any(l => linked.Contains(l.Context.SpanId))).ToList();
        Assert.NotEmpty(batches);
        Assert.Equal(encoded.Length, batches.Sum(b => b.Links.Count()));
        Assert.Equal(encoded.Length, batches.Sum(b => (int)b.GetTagItem("tome.batch.size")!));
        Assert.All(batches, b => Assert.NotEqual(parent.TraceId, b.TraceId)); // a batch serves several traces: a root with links
        Assert.All(requests, r => Assert.NotNull(r.GetTagItem("tome.queue.time_ms")));
    }

    [Fact(Timeout = 60_000)]
    public async Task OtlpExportsTracesAndMetricsWhenAnEndpointIsConfigured()
    {
        // A stand-in collector on loopback: records what arrives at OTLP/HTTP's paths.
        var received = new ConcurrentDictionary<string, byte[]>();
        var collectorBuilder = WebApplication.CreateSlimBuilder();
        collectorBuilder.WebHost.UseUrls("http://127.0.0.1:0");
        var collector = collectorBuilder.Build();
        collector.MapPost("/v1/{signal}", async (string signal, HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            received.AddOrUpdate(signal, body.ToArray(), (_, old) => [.. old, .. body.ToArray()]);
            return Results.Ok();
        });
        await collector.StartAsync(TestContext.Current.CancellationToken);
        await using var ___ = collector;
        var endpoint = collector.Urls.First();

        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), args:
        [
            $"--OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}", "--OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
            "--OTEL_BSP_SCHEDULE_DELAY=100", "--OTEL_METRIC_EXPORT_INTERVAL=200", "--OTEL_SERVICE_NAME=tome-under-test",
        ]);
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/classify", new ByteArrayContent(ServingTestData.Encoded()[0]), ct)).StatusCode);

        bool Has(string signal, string text) =>
            received.TryGetValue(signal, out var bytes) && Encoding.UTF8.GetString(bytes).Contains(text, StringComparison.Ordinal);
        var deadline = Stopwatch.StartNew();
        while (!(Has("traces", "tome.classify") && Has("traces", "tome.batch") && Has("metrics", "tome.images")) && deadline.Elapsed < TimeSpan.FromSeconds(20))
            await Task.Delay(100, ct);
        Assert.True(Has("traces", "tome.classify") && Has("traces", "tome.batch"), "no tome.classify / tome.batch spans reached the collector");
        Assert.True(Has("metrics", "tome.images"), "no tome.images metric reached the collector");
        Assert.True(Has("traces", "tome-under-test"), "OTEL_SERVICE_NAME was not the service's name");
    }
}
