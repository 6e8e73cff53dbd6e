using System.Globalization;
using ToMe.Backends;

namespace ToMe.Model;

/// <summary>
/// The largest batch a backend can run a model at. Every buffer of the forward pass is batch × (elements per image),
/// sized in 64 bits: at T = 1025 a ViT-B's MLP activations pass 2³¹ elements from batch 683 on, which an int product
/// would wrap. A batch past what the backend's buffers (or the .NET arrays of the results) hold is refused before
/// anything is allocated, and the error names the tensor and the largest batch that fits.
/// </summary>
internal static class BatchLimits
{
    /// <summary>
    /// A tensor that bounds the batch: its elements (per image when <paramref name="PerImage"/>, else in all) and the
    /// most it may hold, in one backend buffer or, when <paramref name="HostArray"/>, in a .NET array.
    /// </summary>
    internal readonly record struct Extent(string Tensor, long Elements, long Limit, bool HostArray = false, bool PerImage = true)
    {
        public long LargestBatch => PerImage
            ? (Elements == 0 ? int.MaxValue : Math.Min(int.MaxValue, Limit / Elements))
            : (Elements <= Limit ? int.MaxValue : 0);
    }

    /// <summary>
    /// The tensors that bound the batch on a backend whose buffers hold at most <paramref name="bufferLimit"/> elements
    /// (<see cref="IBackend.MaxBufferElements"/>). The pass's other buffers (metric, sizes, groups, scores, unfolded
    /// patches) hold at most as much as one of these.
    /// </summary>
    internal static IEnumerable<Extent> Extents(ModelConfig config, long bufferLimit, bool returnTokens)
    {
        long s = config.ImageSize, t = config.Tokens, c = config.EmbedDim;
        bool hostBound = Array.MaxLength <= bufferLimit;
        long resultLimit = Math.Min(bufferLimit, Array.MaxLength);
        yield return new("the images [B, 3, S, S]", 3 * s * s, bufferLimit);
        yield return new("the hidden states [B, T, C]", t * c, bufferLimit);
        yield return new("the QKV activations [B, T, 3·C]", t * 3 * c, bufferLimit);
        yield return new("the MLP activations [B, T, hidden]", t * config.MlpHidden, bufferLimit);
        // The row count B·T is an int in every op, and the token sizes and groups come back as .NET arrays.
        yield return new("the token rows [B, T]", t, Array.MaxLength, HostArray: true);
        yield return new("the logits [B, classes]", config.NumClasses, resultLimit, hostBound);
        if (returnTokens)
            yield return new("the returned tokens [B, T, C]", t * c, resultLimit, hostBound);
        // A backend may hold one image-head's attention matrix at a time (the CPU does; CUDA streams over the keys).
        yield return new("an attention matrix [T, T]", t * t, bufferLimit, PerImage: false);
    }

    /// <summary>The largest batch that fits buffers of at most <paramref name="bufferLimit"/> elements; 0 if none does.</summary>
    public static int LargestBatch(ModelConfig config, long bufferLimit, bool returnTokens = false) =>
        (int)Extents(config, bufferLimit, returnTokens).Min(e => e.LargestBatch);

    /// <summary>Throws when <paramref name="batch"/> images of <paramref name="config"/> do not fit <paramref name="backend"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The message names the tensor, its size and the largest batch that fits.</exception>
    public static void Check(IBackend backend, ModelConfig config, int batch, bool returnTokens = false, string paramName = "batch")
    {
        var extents = Extents(config, backend.MaxBufferElements, returnTokens).ToList();
        var tooBig = extents.FirstOrDefault(e => e.LargestBatch < batch);
        if (tooBig.Tensor is null)
            return;
        long largest = extents.Min(e => e.LargestBatch);
        var inv = CultureInfo.InvariantCulture;
        var need = tooBig.PerImage
            ? string.Create(inv, $"{batch * tooBig.Elements:N0} elements at batch {batch}")
            : string.Create(inv, $"{tooBig.Elements:N0} elements");
        var holder = tooBig.HostArray ? "a .NET array" : $"one {backend.Name} backend buffer";
        var fits = largest > 0 ? $"the largest batch that fits is {largest}" : $"no batch fits the {backend.Name} backend";
        throw new ArgumentOutOfRangeException(paramName, batch,
            string.Create(inv, $"{config.Architecture}: {tooBig.Tensor} would hold {need}, over the {tooBig.Limit:N0} that {holder} holds; {fits}"));
    }
}
