using System.Diagnostics;
using System.Net;
using ToMe.Serving;
using ToMe.Tests.Support;

namespace ToMe.Tests.Serving;

/// <summary>
/// A bounded load test of the HTTP service on loopback: 1,000 requests from 32 concurrent clients, then it stops. Opt-in
/// (TOME_LOAD_TEST=1) because it takes longer than the default suite should. Uses the real ViT-Ti from ../shared when
/// present, else the fixture model; prints latency percentiles, throughput and the mean batch size.
/// </summary>
public sealed class ServiceLoadTest(ITestOutputHelper output)
{
    private const int Requests = 1000, Clients = 32;

    [Fact(Timeout = 600_000)]
    public async Task ThousandRequestsFromThirtyTwoClients()
    {
        if (Environment.GetEnvironmentVariable("TOME_LOAD_TEST") is not "1")
            Assert.Skip("set TOME_LOAD_TEST=1 to run the service load test");
        var model = SharedData.Root is { } shared && Directory.Exists(Path.Combine(shared, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k"))
            ? Path.Combine(shared, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k")
            : ServingTestData.ModelPath;
        var batching = new BatchingOptions { MaxBatchSize = 32, MaxQueueDelay = TimeSpan.FromMilliseconds(2), MaxQueueLength = 256 };
        var (app, client) = await ClassifierServiceTests.Start(ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu }), batching);
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;
        var images = ServingTestData.Encoded();
        (await client.PostAsync("/classify", new ByteArrayContent(images[0]), ct)).EnsureSuccessStatusCode(); // warm-up

        var latencies = new double[Requests];
        int next = -1, failures = 0;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => Task.Run(async () =>
        {
            int id;
            while ((id = Interlocked.Increment(ref next)) < Requests)
            {
                long start = Stopwatch.GetTimestamp();
                using var response = await client.PostAsync("/classify?top=5", new ByteArrayContent(images[id % images.Length]), ct);
                latencies[id] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (response.StatusCode != HttpStatusCode.OK)
                    Interlocked.Increment(ref failures);
            }
        }, ct)));
        var elapsed = watch.Elapsed;
        var stats = ((BatchingClassifier)app.Services.GetService(typeof(IImageClassifier))!).Statistics;
        Array.Sort(latencies);
        output.WriteLine($"model {Path.GetFileName(model)}, cpu, {Environment.ProcessorCount} cores; {Requests} requests from {Clients} clients, " +
                         $"max batch {batching.MaxBatchSize}, max delay {batching.MaxQueueDelay.TotalMilliseconds} ms");
        output.WriteLine($"elapsed {elapsed.TotalSeconds:F2} s, throughput {Requests / elapsed.TotalSeconds:F1} req/s");
        output.WriteLine($"latency p50 {latencies[Requests / 2]:F1} ms, p90 {latencies[Requests * 9 / 10]:F1} ms, p99 {latencies[Requests * 99 / 100]:F1} ms, max {latencies[^1]:F1} ms");
        output.WriteLine($"batches {stats.Batches}, mean batch size {stats.MeanBatchSize:F2} (warm-up included), failures {failures}");
        Assert.Equal(0, failures);
    }
}
