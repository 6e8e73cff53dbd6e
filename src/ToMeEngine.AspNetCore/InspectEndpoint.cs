using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using ToMe.Imaging;
using ToMe.Merging;

namespace ToMe.Serving.Http;

/// <summary>The answer of <c>POST /inspect?r=N</c>: one image at one r.</summary>
/// <param name="R">Tokens merged per block (a constant schedule).</param>
/// <param name="Predictions">The five most probable classes, most probable first.</param>
/// <param name="TokensPerLayer">Tokens entering each block.</param>
/// <param name="FinalTokens">Tokens after the last block, prefix tokens included.</param>
/// <param name="PatchGroups">Distinct groups the patches ended in.</param>
/// <param name="Patches">Patches of the input (the model's grid squared).</param>
/// <param name="ForwardMs">Wall time of the forward pass, in milliseconds.</param>
/// <param name="Visualization">ToMe's picture of the groups on the input crop, as a <c>data:image/png;base64,</c> URL.</param>
public sealed record InspectResponse(
    int R,
    IReadOnlyList<PredictionResponse> Predictions,
    int[] TokensPerLayer,
    int FinalTokens,
    int PatchGroups,
    int Patches,
    double ForwardMs,
    string Visualization);

/// <summary>What the page needs to set itself up (<c>GET /inspect</c>).</summary>
/// <param name="Model">The model's name as served.</param>
/// <param name="Description">The classifier's description (model, backend, precision).</param>
/// <param name="Patches">Patches of the input.</param>
/// <param name="MaxR">The largest r <c>POST /inspect</c> accepts.</param>
/// <param name="ImageSize">The model's input side, in pixels.</param>
public sealed record InspectInfo(string Model, string Description, int Patches, int MaxR, int ImageSize);

/// <summary>
/// The browser page at <c>/</c> (HTML, script and style embedded in this assembly: no files beside the server, no CDN) and
/// its endpoint <c>POST /inspect?r=N</c>, which runs one image with r tokens merged per block (whatever the engine's own
/// schedule) and answers the top-5, the tokens per block, the groups the patches ended in, the forward time and ToMe's
/// picture of the groups as a PNG data URL.
/// </summary>
/// <remarks>
/// An inspection bypasses the batcher: it is one forward pass at batch 1 on the engine (serialized with the batches), so at
/// most <see cref="MaxConcurrentInspections"/> run at once and the next waits up to <see cref="InspectionWait"/> before a 503;
/// r is bounded by <see cref="ClassifierServerOptions.MaxInspectR"/> (default: half the patches, where ToMe stops anyway).
/// </remarks>
public static class InspectEndpoint
{
    /// <summary>Inspections running at once: each is a batch-1 forward pass taken from the batches' turns on the engine.</summary>
    public const int MaxConcurrentInspections = 2;

    /// <summary>How long an inspection waits for a slot before the answer is 503 (5 seconds).</summary>
    public static readonly TimeSpan InspectionWait = TimeSpan.FromSeconds(5);

    private static readonly string[] Assets = ["index.html", "app.js", "app.css"];

    private sealed class Gate
    {
        public readonly SemaphoreSlim Slots = new(MaxConcurrentInspections, MaxConcurrentInspections);
    }

    /// <summary>Maps <c>/</c>, its assets and <c>/inspect</c> (done by <see cref="ClassifierEndpoints.MapClassifierEndpoints"/>).</summary>
    public static IEndpointRouteBuilder MapWebPage(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        foreach (var asset in Assets)
        {
            var content = Load(asset);
            var type = Path.GetExtension(asset) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                _ => "text/css; charset=utf-8",
            };
            endpoints.MapGet(asset == "index.html" ? "/" : "/" + asset, () => Results.Bytes(content, type));
        }
        var gate = new Gate();
        endpoints.MapGet("/inspect", (IImageClassifier classifier, ClassifierServerOptions options) =>
            Results.Ok(new InspectInfo(options.ModelName ?? classifier.Model.Architecture, classifier.Description,
                classifier.Model.NumPatches, MaxR(classifier, options), classifier.Model.ImageSize)));
        endpoints.MapPost("/inspect", (HttpContext context, IImageClassifier classifier, ClassifierServerOptions options) =>
            InspectAsync(context, classifier, options, gate));
        return endpoints;
    }

    private static byte[] Load(string asset)
    {
        using var stream = typeof(InspectEndpoint).Assembly.GetManifestResourceStream("webpage/" + asset)
            ?? throw new InvalidOperationException($"the page's {asset} is not embedded in {typeof(InspectEndpoint).Assembly.GetName().Name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static int MaxR(IImageClassifier classifier, ClassifierServerOptions options) =>
        Math.Min(options.MaxInspectR ?? int.MaxValue, classifier.Model.NumPatches / 2);

    private static ToMeEngine? EngineOf(IImageClassifier classifier) => classifier switch
    {
        BatchingClassifier one => one.Engine,
        EnginePool pool => pool.Members.MinBy(m => m.Outstanding)!.Engine,
        _ => null,
    };

    private static async Task<IResult> InspectAsync(HttpContext context, IImageClassifier classifier, ClassifierServerOptions options, Gate gate)
    {
        var (r, badR) = ClassifierEndpoints.IntParameter(context.Request, "r", 0, 0, MaxR(classifier, options));
        if (badR is not null)
            return badR;
        var engine = EngineOf(classifier);
        if (engine is null)
            return Results.Problem($"{classifier.GetType().Name} exposes no engine to inspect", statusCode: StatusCodes.Status501NotImplemented);
        var ct = context.RequestAborted;
        var (image, problem) = await RequestImages.ReadAsync(context.Request, ct);
        if (problem is not null)
            return problem;
        if (!await gate.Slots.WaitAsync(InspectionWait, ct))
            return Problems.Overloaded(context, $"{MaxConcurrentInspections} inspections are running; retry");
        try
        {
            var inspection = await Task.Run(() => engine.Inspect(ImageDecoder.Decode(image!, engine.Options.Decode), MergeSchedule.Constant(r)), ct);
            return Results.Ok(new InspectResponse(r,
                inspection.Predictions.Select(p => new PredictionResponse(p.ClassIndex, p.Label, p.Probability)).ToList(),
                inspection.TokensPerLayer, inspection.FinalTokens, inspection.PatchGroups, engine.Config.NumPatches,
                inspection.ForwardTime.TotalMilliseconds,
                "data:image/png;base64," + Convert.ToBase64String(PngEncoder.Encode(inspection.Visualization))));
        }
        catch (InvalidImageException e)
        {
            var hint = RequestImages.Hint(context.Request, image);
            return Problems.BadImage(hint is null ? e.Message : $"{e.Message}; {hint}");
        }
        catch (ObjectDisposedException)
        {
            return Problems.Stopping();
        }
        finally
        {
            gate.Slots.Release();
        }
    }
}
