using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using ToMe.Imaging;

namespace ToMe.Serving.Http;

/// <summary>One class in a <c>/classify</c> answer.</summary>
/// <param name="Index">The class's index in the model's head.</param>
/// <param name="Label">Its label ("class N" when the model has none).</param>
/// <param name="Probability">Its softmax probability, in [0, 1].</param>
public sealed record PredictionResponse(int Index, string Label, float Probability);

/// <summary>The body of a <c>/classify</c> answer.</summary>
public sealed record ClassifyResponse(IReadOnlyList<PredictionResponse> Predictions);

/// <summary>
/// The HTTP surface of an <see cref="IImageClassifier"/>, shared by the sample service and <c>tome serve</c>:
/// <list type="bullet">
/// <item><c>POST /classify?top=5</c>: the body is an encoded image (JPEG, PNG, BMP, PPM/PGM), raw or as the file of a
/// <c>multipart/form-data</c> form; answers <see cref="ClassifyResponse"/> as JSON; 400 with a problem body
/// (RFC 9457) for an undecodable image or a bad <c>top</c>, 503 when the queue is full (with <c>Retry-After</c>) or the
/// service is stopping.</item>
/// <item><c>GET /health</c>: 200 with the model and backend once the model is loaded; 503 with the reason while the
/// classifier cannot classify (<see cref="IImageClassifier.Fault"/>).</item>
/// <item><c>GET /metrics</c>: Prometheus text of the <c>ToMeEngine</c> meter and ASP.NET Core's (<see cref="ClassifierTelemetry"/>,
/// <see cref="PrometheusMetricsEndpoint"/>).</item>
/// <item>The Open Inference Protocol under <c>/v2</c> (<see cref="OpenInferenceEndpoints"/>).</item>
/// <item><c>GET /</c>: the browser page; <c>POST /inspect?r=N</c>: its data (<see cref="InspectEndpoint"/>).</item>
/// </list>
/// </summary>
public static class ClassifierEndpoints
{
    /// <summary>Most classes one request may ask for.</summary>
    public const int MaxTop = 1000;

    /// <summary>
    /// Maps the endpoints; needs <see cref="IImageClassifier"/>, <see cref="ClassifierServerOptions"/> and
    /// <see cref="ClassifierTelemetry.AddClassifierTelemetry"/> registered (as <see cref="ClassifierServer.Build"/> does).
    /// </summary>
    public static IEndpointRouteBuilder MapClassifierEndpoints(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapPost("/classify", ClassifyAsync);
        endpoints.MapGet("/health", (IImageClassifier classifier) => classifier.Fault is { } fault
            ? Results.Json(new { status = "unhealthy", classifier = classifier.Description, error = fault.Message }, statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Ok(new { status = "ok", classifier = classifier.Description }));
        endpoints.MapPrometheusMetrics();
        endpoints.MapOpenInference();
        endpoints.MapWebPage();
        return endpoints;
    }

    /// <summary>A positive integer query parameter, or the problem answer that names it.</summary>
    internal static (int Value, IResult? Problem) IntParameter(HttpRequest request, string name, int fallback, int min, int max)
    {
        var text = request.Query[name].ToString();
        if (text.Length == 0)
            return (fallback, null);
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
            return (0, Problems.BadParameter(name, $"must be an integer from {min} to {max}, got '{Truncate(text)}'"));
        return (value, null);
    }

    private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "…";

    private static async Task<IResult> ClassifyAsync(HttpContext context, IImageClassifier classifier)
    {
        var (k, badTop) = IntParameter(context.Request, "top", 5, 1, MaxTop);
        if (badTop is not null)
            return badTop;
        var ct = context.RequestAborted;
        var (image, problem) = await RequestImages.ReadAsync(context.Request, ct);
        if (problem is not null)
            return problem;
        try
        {
            var predictions = await classifier.ClassifyAsync(ImageInput.FromBytes(image!), k, ct);
            return Results.Ok(new ClassifyResponse(predictions.Select(p => new PredictionResponse(p.ClassIndex, p.Label, p.Probability)).ToList()));
        }
        catch (InvalidImageException e)
        {
            var hint = RequestImages.Hint(context.Request, image);
            return Problems.BadImage(hint is null ? e.Message : $"{e.Message}; {hint}");
        }
        catch (EngineOverloadedException e)
        {
            return Problems.Overloaded(context, e.Message);
        }
        catch (ObjectDisposedException)
        {
            return Problems.Stopping();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return Problems.ClientClosed();
        }
    }
}
