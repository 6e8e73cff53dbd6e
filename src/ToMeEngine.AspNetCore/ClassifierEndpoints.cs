using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using ToMe.Imaging;

namespace ToMe.Serving.Http;

/// <summary>One class in a <c>/classify</c> answer.</summary>
public sealed record PredictionResponse(int Index, string Label, float Probability);

/// <summary>The body of a <c>/classify</c> answer.</summary>
public sealed record ClassifyResponse(IReadOnlyList<PredictionResponse> Predictions);

/// <summary>The body of every error answer.</summary>
public sealed record ErrorResponse(string Error);

/// <summary>
/// The HTTP surface of an <see cref="IImageClassifier"/>, shared by the sample service and <c>tome serve</c>:
/// <list type="bullet">
/// <item><c>POST /classify?top=5</c>: the body is an encoded image (JPEG, PNG, BMP, PPM/PGM); answers
/// <see cref="ClassifyResponse"/> as JSON; 400 for an undecodable image or a bad <c>top</c>, 503 when the queue is full
/// (with <c>Retry-After</c>) or the service is stopping.</item>
/// <item><c>GET /health</c>: 200 with the model and backend once the model is loaded.</item>
/// <item><c>GET /metrics</c>: a JSON snapshot of the "ToMeEngine" meter (<see cref="MetricsSnapshot"/>).</item>
/// </list>
/// </summary>
public static class ClassifierEndpoints
{
    /// <summary>Most classes one request may ask for.</summary>
    public const int MaxTop = 1000;

    /// <summary>Maps the three endpoints; needs <see cref="IImageClassifier"/> and <see cref="ServingMetricsCollector"/> registered.</summary>
    public static IEndpointRouteBuilder MapClassifierEndpoints(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapPost("/classify", ClassifyAsync);
        endpoints.MapGet("/health", (IImageClassifier classifier) => Results.Ok(new { status = "ok", classifier = classifier.Description }));
        endpoints.MapGet("/metrics", (ServingMetricsCollector collector) => Results.Ok(collector.Snapshot()));
        return endpoints;
    }

    private static async Task<IResult> ClassifyAsync(HttpContext context, IImageClassifier classifier, int? top)
    {
        int k = top ?? 5;
        if (k < 1 || k > MaxTop)
            return Results.BadRequest(new ErrorResponse($"top must be between 1 and {MaxTop}"));
        try
        {
            var predictions = await classifier.ClassifyAsync(ImageInput.FromStream(context.Request.Body), k, context.RequestAborted);
            return Results.Ok(new ClassifyResponse(predictions.Select(p => new PredictionResponse(p.ClassIndex, p.Label, p.Probability)).ToList()));
        }
        catch (InvalidImageException e)
        {
            return Results.BadRequest(new ErrorResponse(e.Message));
        }
        catch (EngineOverloadedException e)
        {
            context.Response.Headers.RetryAfter = "1";
            return Results.Json(new ErrorResponse(e.Message), statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        catch (ObjectDisposedException)
        {
            return Results.Json(new ErrorResponse("the service is stopping"), statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own limits, e.g. a body over MaxRequestBodySize (413).
            return Results.Json(new ErrorResponse(e.Message), statusCode: e.StatusCode);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty; // the client went away; nobody reads the answer
        }
    }
}
