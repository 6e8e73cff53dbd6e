using ToMe.Backends;
using ToMe.Backends.Cuda;

namespace ToMe.Tests.Cuda;

/// <summary>The tensors a half-precision pass stores in half (docs/cuda.md), each of which an ablation can keep wider.</summary>
internal enum HalfPoint
{
    /// <summary>The qkv Linear weights (the patch embedding's and the head's stay fp32 or TF32 in a bf16 pass).</summary>
    QkvWeights,
    /// <summary>The attention projection's Linear weights.</summary>
    ProjWeights,
    /// <summary>fc1's Linear weights.</summary>
    Fc1Weights,
    /// <summary>fc2's Linear weights.</summary>
    Fc2Weights,
    /// <summary>The LayerNorm output of every block (the qkv and fc1 GEMMs' input).</summary>
    NormOutput,
    /// <summary>qkv (attention's input and the merge metric's keys).</summary>
    Qkv,
    /// <summary>The attention output (the proj GEMM's input).</summary>
    AttentionOutput,
    /// <summary>The MLP's hidden layer after GELU (the fc2 GEMM's input).</summary>
    MlpHidden,
}

/// <summary>
/// An fp32 backend whose tensors are rounded to a half type where a bf16/fp16 pass stores them: each
/// <see cref="HalfPoint"/> given a storage is rounded (to nearest even) as it is written, the others stay fp32. Every
/// op still computes in fp32, so the difference between two point sets is what storing those tensors in half costs.
/// The attention's P (rounded to half inside the flash kernel before P·V) and the patch embedding's TF32 are not
/// modelled. Rounding goes through Download/Upload, so it decorates the CPU backend and the CUDA backend alike.
/// </summary>
internal sealed class HalfStorageAblation(IBackend inner, int depth, IReadOnlyDictionary<HalfPoint, FloatStorage> points)
    : ForwardingBackend(inner)
{
    private int linearsPrepared;

    public override ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias,
        Precision precision = Precision.Float32)
    {
        // ForwardPass prepares the patch embedding first, then qkv, proj, fc1, fc2 per block, then the head.
        int index = linearsPrepared++;
        if (index == 0 || index > 4 * depth || !points.TryGetValue(HalfPoint.QkvWeights + (index - 1) % 4, out var storage))
            return Inner.PrepareLinear(weight, outFeatures, inFeatures, bias, precision);
        var rounded = weight.ToArray();
        Round(rounded, storage);
        return Inner.PrepareLinear(rounded, outFeatures, inFeatures, bias, precision);
    }

    public override void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y)
    {
        Inner.LayerNorm(x, weight, bias, rows, channels, eps, y);
        // The blocks' norms write the Hidden buffer; the final norm (in place, or into the pooled rows) stays fp32.
        if (!ReferenceEquals(x, y))
            RoundBuffer(HalfPoint.NormOutput, y, (long)rows * channels);
    }

    public override void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
    {
        long values = (long)batch * tokens * heads * headDim;
        RoundBuffer(HalfPoint.Qkv, qkv, 3 * values);
        Inner.Attention(qkv, size, batch, tokens, heads, headDim, output, keyMean, classAttention);
        RoundBuffer(HalfPoint.AttentionOutput, output, values);
    }

    public override void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y)
    {
        Inner.Linear(x, fc1, rows, LinearEpilogue.BiasGelu, hidden);
        RoundBuffer(HalfPoint.MlpHidden, hidden, (long)rows * fc1.OutFeatures);
        Inner.Linear(hidden, fc2, rows, LinearEpilogue.BiasAccumulate, y);
    }

    private void RoundBuffer(HalfPoint point, DeviceBuffer buffer, long count)
    {
        if (!points.TryGetValue(point, out var storage))
            return;
        var values = new float[count];
        Inner.Download(buffer, values);
        Round(values, storage);
        Inner.Upload(values, buffer);
    }

    private static void Round(float[] values, FloatStorage storage)
    {
        var halves = new ushort[values.Length];
        FloatStorages.ToHalf(values, halves, storage);
        FloatStorages.ToFloat(halves, values, storage);
    }
}
