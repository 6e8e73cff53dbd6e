using System.Net;
using System.Text;
using System.Text.Json;
using ToMe.Imaging;

namespace ToMe.Tests.Serving;

/// <summary>
/// The Open Inference Protocol (KServe v2 REST) with requests written as the specification's examples are: health,
/// metadata, inference on base64 BYTES and on an FP32 tensor, and its {"error": "..."} answers.
/// </summary>
public sealed class OpenInferenceTests
{
    private const string Model = "vit_p14_d3";

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> Body(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<string> Error(HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await Body(response, status);
        Assert.Equal(JsonValueKind.Object, body.ValueKind);
        Assert.Single(body.EnumerateObject()); // exactly {"error": $string}
        return body.GetProperty("error").GetString()!;
    }

    [Fact(Timeout = 60_000)]
    public async Task HealthAndMetadata()
    {
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), modelName: Model);
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;

        Assert.True((await Body(await client.GetAsync("/v2/health/live", ct), HttpStatusCode.OK)).GetProperty("live").GetBoolean());
        Assert.True((await Body(await client.GetAsync("/v2/health/ready", ct), HttpStatusCode.OK)).GetProperty("ready").GetBoolean());
        var server = await Body(await client.GetAsync("/v2", ct), HttpStatusCode.OK);
        Assert.Equal("tome", server.GetProperty("name").GetString());
        Assert.False(string.IsNullOrEmpty(server.GetProperty("version").GetString()));
        Assert.Equal(JsonValueKind.Array, server.GetProperty("extensions").ValueKind);

        var ready = await Body(await client.GetAsync($"/v2/models/{Model}/ready", ct), HttpStatusCode.OK);
        Assert.Equal(Model, ready.GetProperty("name").GetString());
        Assert.True(ready.GetProperty("ready").GetBoolean());

        var metadata = await Body(await client.GetAsync($"/v2/models/{Model}", ct), HttpStatusCode.OK);
        Assert.Equal(Model, metadata.GetProperty("name").GetString());
        Assert.False(string.IsNullOrEmpty(metadata.GetProperty("platform").GetString()));
        var inputs = metadata.GetProperty("inputs").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.Equal("BYTES", inputs["image"].GetProperty("datatype").GetString());
        Assert.Equal("FP32", inputs["pixel_values"].GetProperty("datatype").GetString());
        Assert.Equal([-1, 3, 224, 224], inputs["pixel_values"].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var outputs = metadata.GetProperty("outputs").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.Equal([-1, 100], outputs["probabilities"].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal(["probabilities", "top_k_indices", "top_k_probabilities", "top_k_labels"], outputs.Keys);

        Assert.Contains(Model, await Error(await client.GetAsync("/v2/models/resnet50", ct), HttpStatusCode.NotFound));
        Assert.Contains("versions", await Error(await client.GetAsync($"/v2/models/{Model}/versions/3/ready", ct), HttpStatusCode.NotFound));
        Assert.Contains("no model named 'resnet50'", await Error(await client.GetAsync("/v2/models/resnet50/versions/1/ready", ct), HttpStatusCode.NotFound));
        var get = await client.GetAsync($"/v2/models/{Model}/infer", ct);
        Assert.Contains("POST", await Error(get, HttpStatusCode.MethodNotAllowed));
        Assert.Contains("POST", get.Content.Headers.Allow);
    }

    [Fact(Timeout = 60_000)]
    public async Task InferOnBase64EncodedImages()
    {
        var encoded = ServingTestData.Encoded();
        var expected = ServingTestData.SerialAnswers(100);
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), modelName: Model);
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;

        // Shaped as the specification's example: an id, inputs with name/shape/datatype/data, requested outputs.
        var request = $$"""
            {
              "id" : "42",
              "parameters" : { "top_k" : 3 },
              "inputs" : [
                {
                  "name" : "image",
                  "shape" : [ 2 ],
                  "datatype" : "BYTES",
                  "data" : [ "{{Convert.ToBase64String(encoded[0])}}", "{{Convert.ToBase64String(encoded[3])}}" ]
                }
              ],
              "outputs" : [
                { "name" : "top_k_indices" },
                { "name" : "top_k_labels" },
                { "name" : "probabilities" }
              ]
            }
            """;
        var body = await Body(await client.PostAsync($"/v2/models/{Model}/infer", Json(request), ct), HttpStatusCode.OK);
        Assert.Equal("42", body.GetProperty("id").GetString());
        Assert.Equal(Model, body.GetProperty("model_name").GetString());
        var outputs = body.GetProperty("outputs").EnumerateArray().ToList();
        Assert.Equal(["top_k_indices", "top_k_labels", "probabilities"], outputs.Select(o => o.GetProperty("name").GetString()));

        var indices = outputs[0];
        Assert.Equal("INT64", indices.GetProperty("datatype").GetString());
        Assert.Equal([2, 3], indices.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var got = indices.GetProperty("data").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        Assert.Equal(expected[0].Take(3).Select(p => (long)p.ClassIndex).Concat(expected[3].Take(3).Select(p => (long)p.ClassIndex)), got);
        Assert.Equal(expected[0].Take(3).Select(p => p.Label).Concat(expected[3].Take(3).Select(p => p.Label)),
            outputs[1].GetProperty("data").EnumerateArray().Select(d => d.GetString()));

        var probabilities = outputs[2];
        Assert.Equal("FP32", probabilities.GetProperty("datatype").GetString());
        Assert.Equal([2, 100], probabilities.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var p = probabilities.GetProperty("data").EnumerateArray().Select(d => d.GetSingle()).ToArray();
        for (int b = 0; b < 2; b++)
            foreach (var prediction in expected[b == 0 ? 0 : 3])
                Assert.Equal(prediction.Probability, p[b * 100 + prediction.ClassIndex]);

        // No "outputs": every output, with the default top_k of 5; a nested [N, 1] shape is the same tensor.
        var all = $$"""{"inputs":[{"name":"image","shape":[1,1],"datatype":"BYTES","data":[["{{Convert.ToBase64String(encoded[1])}}"]]}]}""";
        var allBody = await Body(await client.PostAsync($"/v2/models/{Model}/infer", Json(all), ct), HttpStatusCode.OK);
        Assert.False(allBody.TryGetProperty("id", out var noId), "no id in the request, none in the response");
        var named = allBody.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
        Assert.Equal(4, named.Count);
        Assert.Equal([1, 5], named["top_k_probabilities"].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal(expected[1].Take(5).Select(x => x.Probability), named["top_k_probabilities"].GetProperty("data").EnumerateArray().Select(d => d.GetSingle()));
    }

    [Fact(Timeout = 60_000)]
    public async Task InferOnAPreprocessedFp32Tensor()
    {
        using var reference = ServingTestData.LoadEngine();
        var image = ImageDecoder.Decode(ServingTestData.Encoded()[2]);
        var expected = reference.Classify(image, 5);
        var chw = reference.Preprocess(image);
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), modelName: Model);
        await using var _ = app;
        using var __ = client;
        var ct = TestContext.Current.CancellationToken;

        // The natural nested form [1][3][224][224], numbers written as JSON writes floats (shortest round-trip).
        var nested = new float[1][][][] { Enumerable.Range(0, 3).Select(c => Enumerable.Range(0, 224).Select(y => chw.AsSpan((c * 224 + y) * 224, 224).ToArray()).ToArray()).ToArray() };
        var request = JsonSerializer.Serialize(new
        {
            inputs = new[] { new { name = "pixel_values", shape = new[] { 1, 3, 224, 224 }, datatype = "FP32", data = nested } },
            outputs = new[] { new { name = "top_k_indices" }, new { name = "top_k_probabilities" } },
        });
        var body = await Body(await client.PostAsync($"/v2/models/{Model}/infer", Json(request), ct), HttpStatusCode.OK);
        var outputs = body.GetProperty("outputs").EnumerateArray().ToList();
        Assert.Equal(expected.Select(p => (long)p.ClassIndex), outputs[0].GetProperty("data").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal(expected.Select(p => p.Probability), outputs[1].GetProperty("data").EnumerateArray().Select(d => d.GetSingle()));
    }

    [Theory(Timeout = 60_000)]
    [InlineData("not json", "not a JSON")]
    [InlineData("""{"inputs":[]}""", "exactly one input")]
    [InlineData("""{"inputs":[{"name":"input0","shape":[2,2],"datatype":"UINT32","data":[1,2,3,4]}]}""", "unknown input 'input0'")]
    [InlineData("""{"inputs":[{"name":"image","shape":[1],"datatype":"FP32","data":[1]}]}""", "expected BYTES")]
    [InlineData("""{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":["aGVsbG8="]}]}""", "1 data elements; its shape says 2")]
    [InlineData("""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["%%%"]}]}""", "not base64")]
    [InlineData("""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["aGVsbG8="]}]}""", "input element 0")]
    [InlineData("""{"inputs":[{"name":"pixel_values","shape":[1,3,32,32],"datatype":"FP32","data":[1]}]}""", "[N, 3, 224, 224]")]
    [InlineData("""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["aGVsbG8="]}],"outputs":[{"name":"logits"}]}""", "unknown output 'logits'")]
    [InlineData("""{"parameters":{"top_k":0},"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["aGVsbG8="]}]}""", "top_k")]
    [InlineData("""{"inputs":[{"name":"image","shape":[65],"datatype":"BYTES","data":[]}]}""", "1 to 64")]
    [InlineData("""{"inputs":[{"name":"pixel_values","shape":[64,3,224,224],"datatype":"FP32","data":[0]}]}""", "1 data elements; its shape says 9633792")]
    [InlineData("""{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":[["aGVsbG8="]]}]}""", "nested deeper than its shape [1]")]
    [InlineData("""{"inputs":[{"name":"image","shape":[2,1],"datatype":"BYTES","data":[["aGVsbG8="],["aGVsbG8="],["aGVsbG8="]]}]}""", "level 0 holds an array of 3, the shape says 2")]
    [InlineData("""{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":["aGVsbG8=",["aGVsbG8="]]}]}""", "mixes arrays and values")]
    [InlineData("""{"inputs":[{"name":"image","shape":[2,1],"datatype":"BYTES","data":[["aGVsbG8="],"aGVsbG8="]}]}""", "level 1 holds a value")]
    public async Task MalformedRequestsAreAnswered400WithAnError(string request, string message)
    {
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), modelName: Model);
        await using var _ = app;
        using var __ = client;
        var error = await Error(await client.PostAsync($"/v2/models/{Model}/infer", Json(request), TestContext.Current.CancellationToken), HttpStatusCode.BadRequest);
        Assert.Contains(message, error);
    }
}
