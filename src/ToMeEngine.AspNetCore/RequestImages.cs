using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace ToMe.Serving.Http;

/// <summary>
/// The image of a request: the raw body (<c>curl --data-binary @cat.jpg</c>, any content type) or, for
/// <c>multipart/form-data</c> (<c>curl -F file=@cat.jpg</c>, an HTML form), the first part that carries a file.
/// </summary>
internal static class RequestImages
{
    /// <summary>The encoded image, or a problem saying what was wrong with the request.</summary>
    public static async Task<(byte[]? Image, IResult? Problem)> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadBodyAsync(request, cancellationToken);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            return (null, Problems.ClientClosed());
        }
        catch (BadHttpRequestException e)
        {
            return (null, Problems.FromKestrel(e));
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            // MultipartReader: a truncated body, a missing closing boundary, an over-long header line.
            return (null, Problems.BadRequest("Malformed request body", e.Message));
        }
    }

    private static async Task<(byte[]? Image, IResult? Problem)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var type) || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            return (await ReadToEndAsync(request.Body, cancellationToken), null);
        var boundary = HeaderUtilities.RemoveQuotes(type.Boundary).Value;
        if (string.IsNullOrEmpty(boundary))
            return (null, Problems.BadRequest("Malformed multipart body", "a multipart/form-data Content-Type needs a boundary parameter"));
        var reader = new MultipartReader(boundary, request.Body);
        var fields = new List<string>();
        MultipartSection? section;
        // Parts before the file (other form fields) are skipped by the reader; only the file is read into memory.
        while ((section = await reader.ReadNextSectionAsync(cancellationToken)) is not null)
        {
            if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition))
                continue;
            var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
            if (disposition.IsFileDisposition() || name is "file" or "image")
                return (await ReadToEndAsync(section.Body, cancellationToken), null);
            fields.Add(name);
        }
        return (null, Problems.BadRequest("No image in the form",
            $"the multipart/form-data body has no file part{(fields.Count > 0 ? $" (fields: {string.Join(", ", fields)})" : "")}; " +
            "send the image as a file field, e.g. curl -F file=@cat.jpg"));
    }

    /// <summary>Why a body that failed to decode may not be the image the client meant to send, or null.</summary>
    public static string? Hint(HttpRequest request, ReadOnlySpan<byte> body)
    {
        // curl sends --data-binary with this content type too; only -d also strips CR and LF, which any image file
        // of more than a few hundred bytes holds somewhere.
        if (request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) == true
            && body.Length >= 512 && body.IndexOfAny((byte)'\n', (byte)'\r') < 0)
            return "the body was sent as a urlencoded form (curl -d strips line breaks and corrupts binary files): send it with " +
                   "curl --data-binary @cat.jpg or curl -F file=@cat.jpg";
        if (body.StartsWith("--"u8) && body.IndexOf("Content-Disposition"u8) >= 0)
            return "the body looks like multipart/form-data sent without its Content-Type header: send it with curl -F file=@cat.jpg, " +
                   "or the raw file with curl --data-binary @cat.jpg";
        return null;
    }

    private static async Task<byte[]> ReadToEndAsync(Stream body, CancellationToken cancellationToken)
    {
        // Kestrel bounds the body (MaxRequestBodySize) and the decoder bounds what it accepts; this only gathers it.
        using var buffer = new MemoryStream();
        await body.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }
}
