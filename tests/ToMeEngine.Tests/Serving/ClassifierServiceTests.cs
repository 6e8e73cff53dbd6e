using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using ToMe.Serving;
using ToMe.Serving.Http;

namespace ToMe.Tests.Serving;

/// <summary>The HTTP service on loopback (Kestrel on a free port), called with HttpClient.</summary>
public sealed class ClassifierServiceTests
{
    internal static async Task<(WebApplication App, HttpClient Client)> Start(ToMeEngine engine, BatchingOptions? batching = null)
    {
        var app = ClassifierServer.Build(new ClassifierServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            AddClassifier = s => s.AddToMeEngine(engine, batching),
        }, ["--Logging:LogLevel:Default=Warning"]);
        var address = await ClassifierServer.StartAsync(app);
        Assert.Equal(IPAddress.Loopback.ToString(), address.Host);
        return (app, new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) });
    }

    [Fact(Timeout = 60_000)]
    public async Task HealthClassifyAndErrors()
    {
        var encoded = ServingTestData.Encoded();
        IReadOnlyList<Prediction>[] expected;
        using (var reference = ServingTestData.LoadEngine())
            expected = ServingTestData.Serial(reference, encoded, 3);
        var (app, client) = await Start(ServingTestData.LoadEngine());
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;

        var health = await client.GetAsync("/health", ct);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Contains("on cpu", await health.Content.ReadAsStringAsync(ct));

        for (int i = 0; i < encoded.Length; i++)
        {
            var response = await client.PostAsync("/classify?top=3", new ByteArrayContent(encoded[i]), ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadFromJsonAsync<ClassifyResponse>(ct);
            ServingTestData.AssertSame(expected[i], body!.Predictions.Select(p => new Prediction(p.Index, p.Label, p.Probability)).ToList(),
                ServingTestData.ImageNames[i]);
        }

        var bad = await client.PostAsync("/classify", new ByteArrayContent("not an image"u8.ToArray()), ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("unknown image format", (await bad.Content.ReadFromJsonAsync<ErrorResponse>(ct))!.Error);

        var truncated = await client.PostAsync("/classify", new ByteArrayContent(encoded[1][..1000]), ct);
        Assert.Equal(HttpStatusCode.BadRequest, truncated.StatusCode);

        var badTop = await client.PostAsync("/classify?top=0", new ByteArrayContent(encoded[0]), ct);
        Assert.Equal(HttpStatusCode.BadRequest, badTop.StatusCode);

        using var metrics = JsonDocument.Parse(await client.GetStringAsync("/metrics", ct));
        var counters = metrics.RootElement.GetProperty("counters");
        Assert.Equal(encoded.Length, counters.GetProperty("tome.images").GetInt64());
        Assert.Equal(2, counters.GetProperty("tome.requests.failed").GetInt64());
    }

    [Fact(Timeout = 60_000)]
    public async Task OverloadIsAnswered503()
    {
        // A long queueing delay and a one-request queue: the first request waits, the second is refused.
        var (app, client) = await Start(ServingTestData.LoadEngine(),
            new BatchingOptions { MaxQueueLength = 1, MaxQueueDelay = TimeSpan.FromSeconds(2) });
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;
        var image = ServingTestData.Encoded()[0];
        var first = client.PostAsync("/classify", new ByteArrayContent(image), ct);
        var classifier = (BatchingClassifier)app.Services.GetService(typeof(IImageClassifier))!;
        while (classifier.QueueLength == 0)
            await Task.Delay(5, ct);
        var second = await client.PostAsync("/classify", new ByteArrayContent(image), ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.True(second.Headers.RetryAfter is not null);
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
    }

    [Fact(Timeout = 90_000)]
    public async Task TomeServeListensAndAnswers()
    {
        var ct = TestContext.Current.CancellationToken;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "tome.dll"), "serve", "--model", ServingTestData.ModelPath, "--port", "0",
                                  "--backend", "cpu", "--max-batch", "8", "--max-delay-ms", "1" })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        try
        {
            _ = process.StandardError.ReadToEndAsync(ct);
            using var startup = CancellationTokenSource.CreateLinkedTokenSource(ct);
            startup.CancelAfter(TimeSpan.FromSeconds(60));
            string? line;
            do
            {
                line = await process.StandardOutput.ReadLineAsync(startup.Token);
                Assert.True(line is not null, "tome serve exited before printing its address");
            } while (!line.StartsWith("listening on ", StringComparison.Ordinal));
            var address = new Uri(line.Split(' ')[2]);
            Assert.Equal("127.0.0.1", address.Host);
            using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health", ct)).StatusCode);
            var response = await client.PostAsync("/classify?top=2", new ByteArrayContent(ServingTestData.Encoded()[0]), ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(2, (await response.Content.ReadFromJsonAsync<ClassifyResponse>(ct))!.Predictions.Count);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        }
    }
}
