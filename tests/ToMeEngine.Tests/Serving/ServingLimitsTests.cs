using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ToMe.Imaging;
using ToMe.Serving;
using ToMe.Serving.Http;

namespace ToMe.Tests.Serving;

/// <summary>
/// Requests at the service's limits: more images than the queue holds, values that overflow the model, a client that
/// speaks Triton's binary extension, a full queue under the inference protocol, and stopping with a drain delay.
/// </summary>
public sealed class ServingLimitsTests
{
    private const string Model = "vit_p14_d3";

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    private static string Images(int n, byte[] encoded) =>
        $$"""{"inputs":[{"name":"image","shape":[{{n}}],"datatype":"BYTES","data":[{{string.Join(",", Enumerable.Repeat($"\"{Convert.ToBase64String(encoded)}\"", n))}}]}]}""";

    private static async Task<string> Error(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("error").GetString()!;
    }

    [Fact(Timeout = 60_000)]
    public async Task ARequestIsQueuedWholeOrNotAtAll()
    {
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(),
            new BatchingOptions { MaxQueueLength = 2, MaxQueueDelay = TimeSpan.FromSeconds(2) }, modelName: Model);
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;
        var classifier = (BatchingClassifier)app.Services.GetRequiredService<IImageClassifier>();
        var image = ServingTestData.Encoded()[0];

        // More images than the queue can ever hold: refused as the request's own error, nothing classified.
        var tooMany = await Error(await client.PostAsync($"/v2/models/{Model}/infer", Json(Images(3, image)), ct), HttpStatusCode.BadRequest);
        Assert.Contains("3 images", tooMany);
        Assert.Contains("(2 requests", tooMany);
        Assert.Equal(0, classifier.Statistics.Requests);

        // One request waiting leaves room for one image: a request of two is refused whole, with Retry-After.
        var first = client.PostAsync("/classify", new ByteArrayContent(image), ct);
        while (classifier.QueueLength == 0)
            await Task.Delay(5, ct);
        var refused = await client.PostAsync($"/v2/models/{Model}/infer", Json(Images(2, image)), ct);
        Assert.Contains("queue is full", await Error(refused, HttpStatusCode.ServiceUnavailable));
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        var stats = classifier.Statistics;
        Assert.Equal((1, 2, 1), (stats.Requests, stats.Rejected, stats.Images));

        // With the queue empty again, the same two images are answered.
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/v2/models/{Model}/infer", Json(Images(2, image)), ct)).StatusCode);
    }

    [Fact(Timeout = 60_000)]
    public async Task AnInputThatIsNoNormalizedImageIsRefusedAloneAndTheOthersAreAnswered()
    {
        using var engine = ServingTestData.LoadEngine();
        var decoded = ImageDecoder.Decode(ServingTestData.Encoded()[1]);
        var expected = engine.Classify(decoded, 5);
        var chw = engine.Preprocess(decoded);
        var huge = Enumerable.Repeat(3e38f, chw.Length).ToArray(); // would overflow the forward pass (and half precision far sooner)
        var refused = Assert.Throws<ArgumentException>(() => engine.Logits(huge, 1));
        Assert.StartsWith("preprocessed image 0, value 0, is 3E+38: a preprocessed image holds normalized pixels, finite and within ±10000", refused.Message);
        float[] twoImages = [.. chw, .. chw];
        twoImages[chw.Length + 5] = float.NaN;
        Assert.StartsWith("preprocessed image 1, value 5, is NaN", Assert.Throws<ArgumentException>(() => engine.Forward(twoImages, 2)).Message);

        // In one group with a good image: the bad one fails alone, the other gets its serial answer.
        await using var classifier = new BatchingClassifier(engine,
            new BatchingOptions { MaxBatchSize = 2, MaxQueueDelay = TimeSpan.FromMilliseconds(50) }, ownsEngine: false);
        var tasks = classifier.ClassifyGroup([ImageInput.FromTensor(huge), ImageInput.FromTensor(chw)], 5, TestContext.Current.CancellationToken);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => tasks[0]);
        Assert.Contains("finite and within ±10000", e.Message);
        ServingTestData.AssertSame(expected, await tasks[1], "the other image of the group");

        // Through the inference protocol: a 400 naming the element, never a 500 or NaN probabilities.
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), modelName: Model);
        await using var _ = app;
        using var __ = client;
        var request = JsonSerializer.Serialize(new
        {
            inputs = new[] { new { name = "pixel_values", shape = new[] { 2, 3, 224, 224 }, datatype = "FP32", data = chw.Concat(huge).ToArray() } },
        });
        var error = await Error(await client.PostAsync($"/v2/models/{Model}/infer", Json(request), TestContext.Current.CancellationToken), HttpStatusCode.BadRequest);
        Assert.Contains("input element 1", error);
        Assert.Contains("finite and within", error);
    }

    [Fact(Timeout = 60_000)]
    public async Task LogitsThatAreNotFiniteFailTheirImageInAStreamThatGoesOn()
    {
        // The fixture model with an infinite head bias: every image's logits hold +inf.
        var path = Path.Combine(Path.GetTempPath(), $"tome-inf-head-{Guid.NewGuid():N}.safetensors");
        using (var source = ToMe.Weights.SafeTensorsFile.Open(ServingTestData.ModelPath))
        {
            var writer = new ToMe.Weights.SafeTensorsWriter();
            foreach (var (key, value) in source.Metadata)
                writer.AddMetadata(key, value);
            foreach (var (name, info) in source.Tensors)
            {
                var bytes = source.GetBytes(info).ToArray();
                if (name == "head.bias")
                    BitConverter.TryWriteBytes(bytes.AsSpan(4 * 7), float.PositiveInfinity);
                writer.Add(name, info.DType, info.Shape.Select(d => (int)d).ToArray(), bytes);
            }
            File.WriteAllBytes(path, writer.ToArray());
        }
        try
        {
            using var engine = ToMeEngine.Load(path, new EngineOptions { Backend = BackendKind.Cpu });
            var files = ServingTestData.ImageNames.Take(3).Select(n => Support.RepoData.Path(Path.Combine("images", n))).ToList();
            var results = new List<ImageClassification<string>>();
            await foreach (var r in engine.ClassifyManyAsync(files, 5, cancellationToken: TestContext.Current.CancellationToken))
                results.Add(r);
            Assert.Equal(files, results.Select(r => r.Input));
            Assert.All(results, r => Assert.Contains("class 7: Infinity", Assert.IsType<ArithmeticException>(r.Error).Message));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task TritonsBinaryExtensionIsRefusedWithWhatToSendInstead()
    {
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), modelName: Model);
        await using var _ = app;
        using var __ = client;
        // What tritonclient sends by default: a JSON header of the given length, then the raw tensor bytes.
        var header = """{"inputs":[{"name":"pixel_values","shape":[1,3,224,224],"datatype":"FP32","parameters":{"binary_data_size":602112}}]}""";
        var content = new ByteArrayContent([.. Encoding.UTF8.GetBytes(header), .. new byte[602112]]);
        content.Headers.Add("Inference-Header-Content-Length", Encoding.UTF8.GetByteCount(header).ToString());
        var error = await Error(await client.PostAsync($"/v2/models/{Model}/infer", content, TestContext.Current.CancellationToken), HttpStatusCode.BadRequest);
        Assert.Contains("binary tensor data extension", error);
        Assert.Contains("binary_data=False", error);
    }

    [Fact(Timeout = 60_000)]
    public async Task StoppingDrainsForTheDrainDelayThenStops()
    {
        var ct = TestContext.Current.CancellationToken;
        var app = ClassifierServer.Build(new ClassifierServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            ModelName = Model,
            DrainDelay = TimeSpan.FromSeconds(3),
            AddClassifier = s => s.AddToMeEngine(ServingTestData.LoadEngine()),
        }, ["--Logging:LogLevel:Default=Warning"]);
        await using var _ = app;
        using var client = new HttpClient { BaseAddress = await ClassifierServer.StartAsync(app, ct), Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/health/ready", ct)).StatusCode);

        var clock = Stopwatch.StartNew();
        var stopping = app.StopAsync(ct);
        // Readiness turns 503 at once, while requests are still served.
        while ((await client.GetAsync("/v2/health/ready", ct)).StatusCode == HttpStatusCode.OK)
            await Task.Delay(10, ct);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"readiness turned after {clock.Elapsed}");
        var model = await client.GetAsync($"/v2/models/{Model}/ready", ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, model.StatusCode);
        Assert.False(JsonDocument.Parse(await model.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("ready").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/classify", new ByteArrayContent(ServingTestData.Encoded()[0]), ct)).StatusCode);
        await stopping;
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.9), $"stopped after {clock.Elapsed}, before the drain delay");
    }
}
