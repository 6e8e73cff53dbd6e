using System.Text.Json;
using Microsoft.AspNetCore.Http;
using static ToMe.Serving.Http.OpenInferenceEndpoints;

namespace ToMe.Serving.Http;

/// <summary>An Open Inference Protocol inference request: parsed, checked against the model, classified and answered.</summary>
internal static class OpenInferenceRequest
{
    /// <summary>A request that does not follow the protocol or the model's metadata; its message is the answer's "error".</summary>
    private sealed class ProtocolException(string message) : Exception(message);

    private const int DefaultTopK = 5;

    private const string BinaryHeaderLength = "Inference-Header-Content-Length";

    public static async Task<IResult> InferAsync(string modelName, HttpContext context, IImageClassifier classifier)
    {
        var ct = context.RequestAborted;
        // Triton's clients send tensors in its binary-data extension by default, which this server does not announce.
        if (context.Request.Headers.ContainsKey(BinaryHeaderLength))
            return Error(StatusCodes.Status400BadRequest, $"the binary tensor data extension ({BinaryHeaderLength}) is not supported: send the " +
                "inputs as JSON (tritonclient: InferInput.set_data_from_numpy(..., binary_data=False))");
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(context.Request.Body, default, ct);
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            return Problems.ClientClosed();
        }
        catch (JsonException e)
        {
            return Error(StatusCodes.Status400BadRequest, $"the body is not a JSON inference request: {e.Message}");
        }
        catch (BadHttpRequestException e)
        {
            return Error(e.StatusCode, e.Message);
        }
        using (document)
        {
            string? id;
            ImageInput[] images;
            int topK;
            string[] outputs;
            try
            {
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw new ProtocolException("the inference request must be a JSON object");
                id = root.TryGetProperty("id", out var idElement) ? String(idElement, "id") : null;
                topK = TopK(root, classifier.Model.NumClasses);
                outputs = Outputs(root);
                images = Inputs(root, classifier.Model.ImageSize);
            }
            catch (ProtocolException e)
            {
                return Error(StatusCodes.Status400BadRequest, e.Message);
            }

            int classes = classifier.Model.NumClasses;
            IReadOnlyList<Task<IReadOnlyList<Prediction>>> tasks;
            try
            {
                // All of the request's images are queued, or none: a request is never half run and then refused.
                tasks = classifier.ClassifyGroup(images, classes, ct);
            }
            catch (Exception e) when (Failure(e, $"a request of {images.Length} images", context) is { } refused)
            {
                return refused;
            }
            var answers = new IReadOnlyList<Prediction>[tasks.Count];
            IResult? failure = null;
            for (int i = 0; i < tasks.Count; i++)
            {
                try
                {
                    answers[i] = await tasks[i];
                }
                catch (Exception) when (ct.IsCancellationRequested)
                {
                    failure ??= Problems.ClientClosed();
                }
                catch (Exception e) when (Failure(e, $"input element {i}", context) is { } result)
                {
                    failure ??= result; // the first failure answers; the other images still finish (they share batches)
                }
            }
            return failure ?? Results.Json(new OipInferResponse(modelName, id, Outputs(answers, classes, topK, outputs)));
        }
    }

    private static IReadOnlyList<OipOutput> Outputs(IReadOnlyList<Prediction>[] answers, int classes, int topK, string[] wanted)
    {
        int n = answers.Length;
        var result = new List<OipOutput>(wanted.Length);
        foreach (var name in wanted)
        {
            result.Add(name switch
            {
                "probabilities" => new OipOutput(name, [n, classes], "FP32", Probabilities(answers, classes)),
                "top_k_indices" => new OipOutput(name, [n, topK], "INT64", answers.SelectMany(a => a.Take(topK).Select(p => (long)p.ClassIndex)).ToArray()),
                "top_k_probabilities" => new OipOutput(name, [n, topK], "FP32", answers.SelectMany(a => a.Take(topK).Select(p => p.Probability)).ToArray()),
                _ => new OipOutput(name, [n, topK], "BYTES", answers.SelectMany(a => a.Take(topK).Select(p => p.Label)).ToArray()),
            });
        }
        return result;
    }

    private static float[] Probabilities(IReadOnlyList<Prediction>[] answers, int classes)
    {
        var probabilities = new float[answers.Length * classes];
        for (int b = 0; b < answers.Length; b++)
            foreach (var p in answers[b])
                probabilities[b * classes + p.ClassIndex] = p.Probability;
        return probabilities;
    }

    private static int TopK(JsonElement root, int classes)
    {
        if (!root.TryGetProperty("parameters", out var parameters))
            return DefaultTopK;
        if (parameters.ValueKind != JsonValueKind.Object)
            throw new ProtocolException("\"parameters\" must be an object");
        if (!parameters.TryGetProperty("top_k", out var k))
            return DefaultTopK;
        if (k.ValueKind != JsonValueKind.Number || !k.TryGetInt32(out int value) || value < 1 || value > classes)
            throw new ProtocolException($"parameter \"top_k\" must be an integer from 1 to {classes} (the model's classes), got {k.GetRawText()}");
        return value;
    }

    private static string[] Outputs(JsonElement root)
    {
        if (!root.TryGetProperty("outputs", out var outputs))
            return OutputNames;
        if (outputs.ValueKind != JsonValueKind.Array)
            throw new ProtocolException("\"outputs\" must be an array of {\"name\": ...} objects");
        var names = new List<string>();
        foreach (var output in outputs.EnumerateArray())
        {
            if (output.ValueKind != JsonValueKind.Object || !output.TryGetProperty("name", out var nameElement))
                throw new ProtocolException("each requested output must be an object with a \"name\"");
            var name = String(nameElement, "outputs[].name");
            if (!OutputNames.Contains(name))
                throw new ProtocolException($"unknown output '{name}': this model produces {string.Join(", ", OutputNames)}");
            names.Add(name);
        }
        return names.Count == 0 ? OutputNames : names.Distinct().ToArray();
    }

    private static ImageInput[] Inputs(JsonElement root, int size)
    {
        if (!root.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Array)
            throw new ProtocolException("the inference request needs \"inputs\", an array of input tensors");
        if (inputs.GetArrayLength() != 1)
            throw new ProtocolException($"give exactly one input, '{ImageInputName}' (BYTES, base64-encoded image files) or '{PixelInputName}' (FP32 [N, 3, {size}, {size}]); got {inputs.GetArrayLength()}");
        var input = inputs[0];
        if (input.ValueKind != JsonValueKind.Object)
            throw new ProtocolException("an input tensor must be a JSON object");
        var name = String(Required(input, "name", "input"), "name");
        var datatype = String(Required(input, "datatype", name), "datatype");
        var shape = Shape(Required(input, "shape", name), name);
        var data = Required(input, "data", name);
        return name switch
        {
            ImageInputName when datatype == "BYTES" => EncodedImages(name, shape, data),
            PixelInputName when datatype == "FP32" => PixelValues(name, shape, data, size),
            ImageInputName or PixelInputName => throw new ProtocolException(
                $"input '{name}' has datatype {datatype}; expected {(name == ImageInputName ? "BYTES" : "FP32")}"),
            _ => throw new ProtocolException($"unknown input '{name}': this model takes '{ImageInputName}' (BYTES) or '{PixelInputName}' (FP32 [N, 3, {size}, {size}])"),
        };
    }

    private static ImageInput[] EncodedImages(string name, long[] shape, JsonElement data)
    {
        if (!(shape.Length == 1 || (shape.Length == 2 && shape[1] == 1)))
            throw new ProtocolException($"input '{name}' must have shape [N] or [N, 1] (one encoded image per element), got [{string.Join(", ", shape)}]");
        int n = Batch(name, shape[0]);
        var elements = Flatten(data, shape, n, name);
        var images = new ImageInput[n];
        for (int i = 0; i < n; i++)
        {
            if (elements[i].ValueKind != JsonValueKind.String)
                throw new ProtocolException($"input '{name}' element {i} must be a string holding a base64-encoded image file");
            try
            {
                images[i] = ImageInput.FromBytes(Convert.FromBase64String(elements[i].GetString()!));
            }
            catch (FormatException)
            {
                throw new ProtocolException($"input '{name}' element {i} is not base64: BYTES elements in JSON carry the image file base64-encoded");
            }
        }
        return images;
    }

    private static ImageInput[] PixelValues(string name, long[] shape, JsonElement data, int size)
    {
        if (shape.Length != 4 || shape[1] != 3 || shape[2] != size || shape[3] != size)
            throw new ProtocolException($"input '{name}' must have shape [N, 3, {size}, {size}], got [{string.Join(", ", shape)}]");
        int n = Batch(name, shape[0]);
        int per = 3 * size * size;
        var elements = Flatten(data, shape, n * per, name);
        var images = new ImageInput[n];
        for (int b = 0; b < n; b++)
        {
            var chw = new float[per];
            for (int i = 0; i < per; i++)
            {
                var e = elements[b * per + i];
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetSingle(out chw[i]) || !float.IsFinite(chw[i]))
                    throw new ProtocolException($"input '{name}' element {b * per + i} is not a finite FP32 number: {Truncate(e.GetRawText())}");
            }
            images[b] = ImageInput.FromTensor(chw);
        }
        return images;
    }

    private static int Batch(string name, long n) => n is >= 1 and <= MaxImagesPerRequest ? (int)n
        : throw new ProtocolException($"input '{name}' has {n} images; one request takes 1 to {MaxImagesPerRequest}");

    /// <summary>
    /// The tensor's elements in row-major order, from the flat form (one array of <paramref name="count"/> elements) or the
    /// nested one (arrays nested exactly as <paramref name="shape"/>). Nothing is sized by the shape before the data has
    /// been seen to match it, so a small request cannot claim a large allocation.
    /// </summary>
    private static List<JsonElement> Flatten(JsonElement data, long[] shape, int count, string name)
    {
        if (data.ValueKind != JsonValueKind.Array)
            throw new ProtocolException($"input '{name}' \"data\" must be an array");
        int length = data.GetArrayLength();
        if (length == 0 || data[0].ValueKind != JsonValueKind.Array)
        {
            if (length != count)
                throw new ProtocolException($"input '{name}' has {length} data elements; its shape says {count}");
            var flat = new List<JsonElement>(length);
            foreach (var item in data.EnumerateArray())
                flat.Add(item.ValueKind != JsonValueKind.Array ? item
                    : throw new ProtocolException($"input '{name}' \"data\" mixes arrays and values at its first level: give it flat (row-major) or nested as its shape {Dims(shape)}"));
            return flat;
        }
        var elements = new List<JsonElement>();
        void Walk(JsonElement e, int level)
        {
            if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != shape[level])
                throw new ProtocolException($"input '{name}' \"data\" is nested, so it must be nested as its shape {Dims(shape)}: " +
                    $"level {level} holds {(e.ValueKind == JsonValueKind.Array ? $"an array of {e.GetArrayLength()}" : "a value")}, the shape says {shape[level]}");
            foreach (var item in e.EnumerateArray())
            {
                if (level + 1 < shape.Length)
                    Walk(item, level + 1);
                else if (item.ValueKind == JsonValueKind.Array)
                    throw new ProtocolException($"input '{name}' \"data\" is nested deeper than its shape {Dims(shape)}");
                else
                    elements.Add(item);
            }
        }
        Walk(data, 0);
        return elements;
    }

    private static string Dims(long[] shape) => $"[{string.Join(", ", shape)}]";

    private static long[] Shape(JsonElement shape, string name)
    {
        if (shape.ValueKind != JsonValueKind.Array)
            throw new ProtocolException($"input '{name}' \"shape\" must be an array of integers");
        return shape.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out long v) && v >= 0 ? v
            : throw new ProtocolException($"input '{name}' \"shape\" must hold non-negative integers, got {Truncate(d.GetRawText())}")).ToArray();
    }

    private static JsonElement Required(JsonElement obj, string property, string what) =>
        obj.TryGetProperty(property, out var value) ? value : throw new ProtocolException($"input '{what}' has no \"{property}\"");

    private static string String(JsonElement e, string what) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new ProtocolException($"\"{what}\" must be a string");

    private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
