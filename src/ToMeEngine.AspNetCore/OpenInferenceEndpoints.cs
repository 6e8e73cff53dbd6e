using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ToMe.Imaging;
using ToMe.Model;

namespace ToMe.Serving.Http;

/// <summary>A tensor's description in the Open Inference Protocol's metadata.</summary>
public sealed record OipTensorMetadata(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("datatype")] string Datatype,
    [property: JsonPropertyName("shape")] long[] Shape);

/// <summary>The model metadata response (<c>GET /v2/models/NAME</c>).</summary>
public sealed record OipModelMetadata(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("platform")] string Platform,
    [property: JsonPropertyName("inputs")] IReadOnlyList<OipTensorMetadata> Inputs,
    [property: JsonPropertyName("outputs")] IReadOnlyList<OipTensorMetadata> Outputs);

/// <summary>One output tensor of an inference response.</summary>
public sealed record OipOutput(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("shape")] long[] Shape,
    [property: JsonPropertyName("datatype")] string Datatype,
    [property: JsonPropertyName("data")] object Data);

/// <summary>The inference response (<c>POST /v2/models/NAME/infer</c>).</summary>
public sealed record OipInferResponse(
    [property: JsonPropertyName("model_name")] string ModelName,
    [property: JsonPropertyName("id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Id,
    [property: JsonPropertyName("outputs")] IReadOnlyList<OipOutput> Outputs);

/// <summary>
/// The Open Inference Protocol (KServe's "V2 inference protocol", also Triton's HTTP API), HTTP/REST with JSON:
/// <list type="bullet">
/// <item><c>GET /v2</c> server metadata; <c>GET /v2/health/live</c>; <c>GET /v2/health/ready</c> and
/// <c>GET /v2/models/NAME/ready</c>: 200 when ready, 503 once the service is stopping (so a load balancer drains it) and
/// while the classifier cannot classify (with its <c>Fault</c>); <c>GET /v2/models/NAME</c> metadata.</item>
/// <item><c>POST /v2/models/NAME/infer</c> with exactly one input: <c>image</c>, BYTES of shape [N] (or [N, 1]) whose
/// elements are base64-encoded image files, or <c>pixel_values</c>, FP32 [N, 3, S, S] preprocessed as the model's eval
/// transform does. Outputs: <c>probabilities</c> FP32 [N, classes], and the <c>top_k</c> request parameter's (default 5)
/// most probable classes as <c>top_k_indices</c> INT64, <c>top_k_probabilities</c> FP32 and <c>top_k_labels</c> BYTES, each
/// [N, k]; the request's <c>outputs</c> list picks some, none returns all.</item>
/// </list>
/// Errors are the specification's <c>{"error": "..."}</c>: 400 for a malformed request, 404 for another model's name,
/// 503 when the queue is full or the service stopping. The images of one request join the dynamic batcher like any others.
/// </summary>
public static class OpenInferenceEndpoints
{
    /// <summary>The input carrying encoded images.</summary>
    public const string ImageInputName = "image";

    /// <summary>The input carrying preprocessed images.</summary>
    public const string PixelInputName = "pixel_values";

    /// <summary>Most images one inference request may carry.</summary>
    public const int MaxImagesPerRequest = 64;

    internal static readonly string[] OutputNames = ["probabilities", "top_k_indices", "top_k_probabilities", "top_k_labels"];

    /// <summary>Maps the protocol's endpoints (done by <see cref="ClassifierEndpoints.MapClassifierEndpoints"/>).</summary>
    public static IEndpointRouteBuilder MapOpenInference(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var v2 = endpoints.MapGroup("/v2");
        v2.MapGet("", () => Results.Json(new
        {
            name = "tome",
            version = typeof(OpenInferenceEndpoints).Assembly.GetName().Version?.ToString(3) ?? "0",
            extensions = Array.Empty<string>(),
        }));
        v2.MapGet("/health/live", () => Results.Json(new { live = true }));
        v2.MapGet("/health/ready", (IImageClassifier classifier, HttpContext context) => !Ready(classifier, context)
            ? Results.Json(new { live = true, ready = false, error = classifier.Fault?.Message }, statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Json(new { live = true, ready = true }));
        v2.MapGet("/models/{name}", (string name, IImageClassifier classifier, ClassifierServerOptions options) =>
            Find(name, classifier, options) ?? Results.Json(Metadata(NameOf(classifier, options), classifier.Model)));
        v2.MapGet("/models/{name}/ready", (string name, IImageClassifier classifier, ClassifierServerOptions options, HttpContext context) =>
            Find(name, classifier, options) ?? (Ready(classifier, context)
                ? Results.Json(new { name, ready = true })
                : Results.Json(new { name, ready = false }, statusCode: StatusCodes.Status503ServiceUnavailable)));
        v2.MapPost("/models/{name}/infer", async (string name, HttpContext context, IImageClassifier classifier, ClassifierServerOptions options) =>
            Find(name, classifier, options) ?? await OpenInferenceRequest.InferAsync(NameOf(classifier, options), context, classifier));
        // The protocol's clients read {"error"} bodies: a wrong method gets one too, with Allow.
        v2.MapMethods("/models/{name}/infer", ["GET", "PUT", "DELETE", "PATCH"], (HttpContext context) =>
        {
            context.Response.Headers.Allow = "POST";
            return Error(StatusCodes.Status405MethodNotAllowed, $"{context.Request.Method} is not an inference request: POST the request's JSON");
        });
        v2.Map("/models/{name}/versions/{version}/{**rest}", (string name, string version, IImageClassifier classifier, ClassifierServerOptions options) =>
            Find(name, classifier, options) ?? Error(StatusCodes.Status404NotFound, $"model '{name}' has no versions: call /v2/models/{name} without /versions/{version}"));
        return endpoints;
    }

    // Not while the service is stopping (a load balancer drains it), nor while the classifier cannot classify.
    private static bool Ready(IImageClassifier classifier, HttpContext context) =>
        !context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested
        && context.RequestServices.GetService<ServiceDrain>() is not { Stopping: true } && classifier.Fault is null;

    internal static IResult Error(int status, string message) => Results.Json(new { error = message }, statusCode: status);

    private static string NameOf(IImageClassifier classifier, ClassifierServerOptions options) => options.ModelName ?? classifier.Model.Architecture;

    private static IResult? Find(string name, IImageClassifier classifier, ClassifierServerOptions options) =>
        name == NameOf(classifier, options) ? null
            : Error(StatusCodes.Status404NotFound, $"no model named '{name}': this server serves '{NameOf(classifier, options)}'");

    internal static OipModelMetadata Metadata(string name, ModelConfig config) => new(name, "tomeengine_safetensors",
        [
            new OipTensorMetadata(ImageInputName, "BYTES", [-1]),
            new OipTensorMetadata(PixelInputName, "FP32", [-1, 3, config.ImageSize, config.ImageSize]),
        ],
        [
            new OipTensorMetadata("probabilities", "FP32", [-1, config.NumClasses]),
            new OipTensorMetadata("top_k_indices", "INT64", [-1, -1]),
            new OipTensorMetadata("top_k_probabilities", "FP32", [-1, -1]),
            new OipTensorMetadata("top_k_labels", "BYTES", [-1, -1]),
        ]);

    /// <summary>The answer for a failed classification of one image (or a refused request), or null to rethrow.</summary>
    internal static IResult? Failure(Exception e, string what, HttpContext context)
    {
        switch (e)
        {
            // Logits that overflowed float32: the request's values (only a preprocessed tensor can hold such values).
            case InvalidImageException or ArgumentException or ArithmeticException:
                return Error(StatusCodes.Status400BadRequest, $"{what}: {e.Message}");
            case EngineOverloadedException:
                context.Response.Headers.RetryAfter = "1";
                return Error(StatusCodes.Status503ServiceUnavailable, e.Message);
            case ObjectDisposedException:
                return Error(StatusCodes.Status503ServiceUnavailable, "the service is stopping");
            default:
                return null;
        }
    }
}
