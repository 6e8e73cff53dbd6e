using Microsoft.AspNetCore.Http;

namespace ToMe.Serving.Http;

/// <summary>
/// The error answers of the service's own endpoints, as RFC 9457 problem details (<c>application/problem+json</c>):
/// <c>type</c>, <c>title</c>, <c>status</c>, <c>detail</c>, and for a bad parameter <c>errors</c> keyed by its name.
/// (The Open Inference Protocol's endpoints answer the <c>{"error": "..."}</c> its specification defines instead.)
/// </summary>
internal static class Problems
{
    public static IResult BadParameter(string name, string problem) =>
        Results.ValidationProblem(new Dictionary<string, string[]> { [name] = [problem] },
            detail: $"query parameter '{name}' {problem}", title: $"Invalid query parameter '{name}'");

    public static IResult BadImage(string detail) =>
        Results.Problem(detail, statusCode: StatusCodes.Status400BadRequest, title: "The image could not be read");

    public static IResult BadRequest(string title, string detail) =>
        Results.Problem(detail, statusCode: StatusCodes.Status400BadRequest, title: title);

    public static IResult Overloaded(HttpContext context, string detail)
    {
        context.Response.Headers.RetryAfter = "1";
        return Results.Problem(detail, statusCode: StatusCodes.Status503ServiceUnavailable, title: "Too many requests are waiting");
    }

    public static IResult Stopping() =>
        Results.Problem("the service is stopping", statusCode: StatusCodes.Status503ServiceUnavailable, title: "Service stopping");

    /// <summary>
    /// The client went away before its answer (it closed the connection or aborted the upload): nobody reads this, and
    /// the request is logged and counted as 499 (nginx's "client closed request"), not as the client's error or the server's.
    /// </summary>
    public static IResult ClientClosed() => Results.StatusCode(StatusCodeClientClosed);

    public const int StatusCodeClientClosed = 499;

    /// <summary>Kestrel's own limits, e.g. a body over MaxRequestBodySize (413).</summary>
    public static IResult FromKestrel(BadHttpRequestException e) =>
        Results.Problem(e.Message, statusCode: e.StatusCode, title: "The request was refused");
}
