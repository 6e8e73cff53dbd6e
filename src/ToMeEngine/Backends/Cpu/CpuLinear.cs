using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

// Dispose drops the weights, so that a disposed engine something still refers to holds no model: an op running then keeps
// them alive through its own reference, and a later use is an ObjectDisposedException, never a read of freed memory.
internal sealed class CpuLinearWeights(PackedWeight packed, float[] bias) : ILinearWeights
{
    private PackedWeight? packed = packed; // W [out, in], packed once into micro-kernel panels
    private float[]? bias = bias;          // [out]

    public PackedWeight Packed => packed ?? throw new ObjectDisposedException(nameof(CpuLinearWeights));
    public float[] Bias => bias ?? throw new ObjectDisposedException(nameof(CpuLinearWeights));

    public int OutFeatures { get; } = packed.N;
    public int InFeatures { get; } = packed.K;
    public Precision Precision => Precision.Float32;

    public void Dispose() => (packed, bias) = (null, null);
}

/// <summary>A Linear quantized to int8 at load (<see cref="Int8Weight"/>); its activations are quantized as it runs.</summary>
internal sealed class CpuInt8LinearWeights(Int8Weight quantized) : ILinearWeights
{
    private Int8Weight? quantized = quantized;

    public Int8Weight Quantized => quantized ?? throw new ObjectDisposedException(nameof(CpuInt8LinearWeights));

    public int OutFeatures { get; } = quantized.N;
    public int InFeatures { get; } = quantized.K;
    public Precision Precision => Precision.Int8;

    public void Dispose() => quantized = null;
}

internal sealed partial class CpuBackend
{
    public Precision ResolvePrecision(Precision requested) => requested switch
    {
        Precision.Float32 or Precision.Auto => Precision.Float32,
        Precision.Int8 => Precision.Int8,
        _ => throw new NotSupportedException(
            $"{requested.Name()} needs the CUDA backend; the CPU backend runs {Precision.Float32.Name()} and {Precision.Int8.Name()}"),
    };

    public ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias,
        Precision precision = Precision.Float32) => ResolvePrecision(precision) switch
    {
        Precision.Int8 => new CpuInt8LinearWeights(Int8Weight.Quantize(weight, outFeatures, inFeatures, bias)),
        _ => new CpuLinearWeights(PackedWeight.Pack(weight, outFeatures, inFeatures), bias.ToArray()),
    };

    [MethodImpl(Jit.Hot)]
    public void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y) =>
        LinearRows(F(x), weights, rows, epilogue, F(y));

    [MethodImpl(Jit.Hot)]
    public void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y)
    {
        if (fc1 is CpuInt8LinearWeights q1 && fc2 is CpuInt8LinearWeights q2)
        {
            int c = q1.InFeatures, n = q2.OutFeatures;
            Int8Gemm.Mlp(F(x).AsSpan(0, rows * c), c, rows, q1.Quantized, q2.Quantized, F(y).AsSpan(0, rows * n), n, MaxThreads, Int8Path);
            return;
        }
        LinearRows(F(x), fc1, rows, LinearEpilogue.BiasGelu, F(hidden));
        LinearRows(F(hidden), fc2, rows, LinearEpilogue.BiasAccumulate, F(y));
    }

    [MethodImpl(Jit.Hot)]
    internal void LinearRows(Span<float> x, ILinearWeights weights, int rows, LinearEpilogue epilogue, Span<float> y)
    {
        var gemmEpilogue = epilogue switch
        {
            LinearEpilogue.Bias => GemmEpilogue.Bias,
            LinearEpilogue.BiasGelu => GemmEpilogue.BiasGelu,
            LinearEpilogue.BiasAccumulate => GemmEpilogue.Accumulate,
            _ => throw new ArgumentOutOfRangeException(nameof(epilogue)),
        };
        int n = weights.OutFeatures, k = weights.InFeatures;
        switch (weights)
        {
            case CpuLinearWeights w:
                CpuGemm.Linear(x[..(rows * k)], rows, w.Packed, w.Bias, y[..(rows * n)], gemmEpilogue, MaxThreads);
                break;
            case CpuInt8LinearWeights q:
                Int8Gemm.Linear(x[..(rows * k)], k, rows, q.Quantized, y[..(rows * n)], n, gemmEpilogue, MaxThreads, Int8Path);
                break;
            default:
                throw new ArgumentException($"expected Linear weights prepared by the CPU backend, got {weights.GetType().Name}");
        }
    }
}
