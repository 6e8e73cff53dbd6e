using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using ToMe.Serving;
using ToMe.Serving.Http;

namespace ToMe.Tests.Serving;

/// <summary>The HTTP service on loopback (Kestrel on a free port), called with HttpClient.</summary>
public sealed class ClassifierServiceTests
{
    internal static async Task<(WebApplication App, HttpClient Client)> Start(ToMeEngine engine, BatchingOptions? batching = null,
                                                                             string? modelName = null, string[]? args = null)
    {
        var app = ClassifierServer.Build(new ClassifierServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            ModelName = modelName,
            AddClassifier = s => s.AddToMeEngine(engine, batching),
        }, ["--Logging:LogLevel:Default=Warning", .. args ?? []]);
        var address = await ClassifierServer.StartAsync(app);
        Assert.Equal(IPAddress.Loopback.ToString(), address.Host);
        return (app, new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) });
    }

    [Fact(Timeout = 60_000)]
    public async Task HealthClassifyAndErrors()
    {
        var encoded = ServingTestData.Encoded();
        var expected = ServingTestData.SerialAnswers(3);
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
        Assert.Contains("unknown image format", (await Problem(bad, HttpStatusCode.BadRequest)).GetProperty("detail").GetString());

        var truncated = await client.PostAsync("/classify", new ByteArrayContent(encoded[1][..1000]), ct);
        await Problem(truncated, HttpStatusCode.BadRequest);

        var badTop = await client.PostAsync("/classify?top=0", new ByteArrayContent(encoded[0]), ct);
        Assert.True((await Problem(badTop, HttpStatusCode.BadRequest)).GetProperty("errors").TryGetProperty("top", out var __top));
    }

    /// <summary>An RFC 9457 problem body: the status, application/problem+json, and the status repeated in the body.</summary>
    internal static async Task<JsonElement> Problem(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal((int)status, body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("title").GetString()));
        return body;
    }

    [Theory(Timeout = 60_000)]
    [InlineData("abc")]
    [InlineData("5.5")]
    [InlineData("1001")]
    [InlineData("")]
    public async Task ABadTopIsAProblemNamingTheParameter(string top)
    {
        var (app, client) = await Start(ServingTestData.LoadEngine());
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;
        var response = await client.PostAsync($"/classify?top={top}", new ByteArrayContent(ServingTestData.Encoded()[0]), ct);
        if (top == "")
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode); // an empty value is no value: the default
            return;
        }
        var problem = await Problem(response, HttpStatusCode.BadRequest);
        Assert.Contains("'top'", problem.GetProperty("detail").GetString());
        Assert.Contains(top, problem.GetProperty("errors").GetProperty("top")[0].GetString());
    }

    [Fact(Timeout = 60_000)]
    public async Task MultipartFormUploadsAreClassified()
    {
        var encoded = ServingTestData.Encoded();
        var expected = ServingTestData.SerialAnswers(3)[0];
        var (app, client) = await Start(ServingTestData.LoadEngine());
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;

        // What curl -F file=@cat.jpg sends, and an HTML form with another field before the file.
        using var form = new MultipartFormDataContent { { new ByteArrayContent(encoded[0]), "file", "cat.jpg" } };
        var response = await client.PostAsync("/classify?top=3", form, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<ClassifyResponse>(ct);
        ServingTestData.AssertSame(expected, body!.Predictions.Select(p => new Prediction(p.Index, p.Label, p.Probability)).ToList(), "multipart");

        using var html = new MultipartFormDataContent { { new StringContent("hello"), "comment" }, { new ByteArrayContent(encoded[0]), "upload", "a.jpg" } };
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/classify?top=3", html, ct)).StatusCode);

        using var noFile = new MultipartFormDataContent { { new StringContent("hello"), "comment" } };
        var missing = await Problem(await client.PostAsync("/classify", noFile, ct), HttpStatusCode.BadRequest);
        Assert.Contains("-F file=@", missing.GetProperty("detail").GetString());

        // curl -d @cat.jpg: a urlencoded form without the file's CR and LF bytes; the answer says how to send it instead.
        var stripped = encoded[1].Where(b => b is not ((byte)'\n' or (byte)'\r')).ToArray();
        Assert.True(stripped.Length < encoded[1].Length, "the photo holds line-break bytes, as any photo does");
        var urlencoded = new ByteArrayContent(stripped);
        urlencoded.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-www-form-urlencoded");
        var hint = await Problem(await client.PostAsync("/classify", urlencoded, ct), HttpStatusCode.BadRequest);
        Assert.Contains("curl -d strips line breaks", hint.GetProperty("detail").GetString());
        // curl --data-binary sends the same content type: a file that is broken as sent gets no such hint.
        var truncated = new ByteArrayContent(encoded[1][..(encoded[1].Length / 2)]);
        truncated.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-www-form-urlencoded");
        var noHint = await Problem(await client.PostAsync("/classify", truncated, ct), HttpStatusCode.BadRequest);
        Assert.DoesNotContain("curl -d", noHint.GetProperty("detail").GetString());

        // A multipart body sent raw (its Content-Type lost on the way): named as such, not just as unknown bytes.
        var raw = new ByteArrayContent(await form.ReadAsByteArrayAsync(ct));
        var rawProblem = await Problem(await client.PostAsync("/classify", raw, ct), HttpStatusCode.BadRequest);
        Assert.Contains("multipart/form-data", rawProblem.GetProperty("detail").GetString());
    }

    [Fact(Timeout = 60_000)]
    public async Task ABusyPortIsOneLineNamingIt()
    {
        using var holder = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        int port = ((IPEndPoint)holder.LocalEndpoint).Port;

        // In process: a typed exception naming the port.
        var app = ClassifierServer.Build(new ClassifierServerOptions { Port = port, AddClassifier = s => s.AddToMeEngine(ServingTestData.LoadEngine()) },
            ["--Logging:LogLevel:Default=Warning"]);
        await using (app)
        {
            var e = await Assert.ThrowsAsync<PortInUseException>(() => ClassifierServer.StartAsync(app, TestContext.Current.CancellationToken));
            Assert.Equal(port, e.Port);
        }

        // tome serve: one line on stderr, exit code 2, no stack trace.
        var (code, stdout, stderr) = Support.TomeProcess.Run("serve", "--model", ServingTestData.ModelPath, "--port", port.ToString(),
            "--backend", "cpu");
        Assert.Equal(2, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{stderr}");
        Assert.Contains($"port {port}", lines[0]);
        Assert.DoesNotContain("listening", stdout);
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
        await using var server = await ServerProcess.StartAsync(ServerProcess.Dotnet(Environment.CurrentDirectory,
            Path.Combine(AppContext.BaseDirectory, "tome.dll"), "serve", "--model", ServingTestData.ModelPath, "--port", "0",
            "--backend", "cpu", "--max-batch", "8", "--max-delay-ms", "1"), TimeSpan.FromSeconds(60), ct);
        Assert.True(server.Address is not null, $"tome serve exited ({server.ExitCode}) before listening: {server.Stderr}");
        Assert.Equal("127.0.0.1", server.Address.Host);
        using var client = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health", ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/health/ready", ct)).StatusCode);
        var response = await client.PostAsync("/classify?top=2", new ByteArrayContent(ServingTestData.Encoded()[0]), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, (await response.Content.ReadFromJsonAsync<ClassifyResponse>(ct))!.Predictions.Count);
        // The model's name in the protocol's paths is the file's, as given to --model.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/models/vit_p14_d3/ready", ct)).StatusCode);
    }
    /// <summary>A classifier that cannot classify (its Fault set) makes every health check answer 503 with the reason.</summary>
    [Fact(Timeout = 60_000)]
    public async Task HealthChecksReportAClassifierThatCannotClassify()
    {
        var ct = TestContext.Current.CancellationToken;
        using var engine = ServingTestData.LoadEngine();
        var classifier = new Faulted(engine.Config);
        var app = ClassifierServer.Build(new ClassifierServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            ModelName = "m",
            AddClassifier = s => s.AddSingleton<IImageClassifier>(classifier),
        }, ["--Logging:LogLevel:Default=Warning"]);
        var address = await ClassifierServer.StartAsync(app, ct);
        await using var _ = app;
        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };

        var health = await client.GetAsync("/health", ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Contains("the GPU context was lost", await health.Content.ReadAsStringAsync(ct));
        var ready = await client.GetAsync("/v2/health/ready", ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("the GPU context was lost", await ready.Content.ReadAsStringAsync(ct));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/health/live", ct)).StatusCode);
        var modelReady = await client.GetAsync("/v2/models/m/ready", ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, modelReady.StatusCode); // the protocol's clients read readiness from the status
        Assert.False(JsonDocument.Parse(await modelReady.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("ready").GetBoolean());

        classifier.Fault = null;
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health", ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/health/ready", ct)).StatusCode);
    }

    private sealed class Faulted(ToMe.Model.ModelConfig model) : IImageClassifier
    {
        public string Description => "faulted";
        public ToMe.Model.ModelConfig Model => model;
        public Exception? Fault { get; set; } = new InvalidOperationException("the GPU context was lost and a fresh engine could not be built");

        public Task<IReadOnlyList<Prediction>> ClassifyAsync(ImageInput image, int topK = 5, CancellationToken cancellationToken = default) =>
            Task.FromException<IReadOnlyList<Prediction>>(Fault ?? new NotSupportedException());
    }
}
