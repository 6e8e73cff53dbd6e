namespace ToMe.Backends.Cpu;

internal sealed class CpuLinearWeights(PackedWeight packed, float[] bias) : ILinearWeights
{
    public readonly PackedWeight Packed = packed; // W [out, in], packed once into micro-kernel panels
    public readonly float[] Bias = bias;          // [out]

    public int OutFeatures => Packed.N;
    public int InFeatures => Packed.K;

    public void Dispose() { }
}

internal sealed partial class CpuBackend
{
    public ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias) =>
        new CpuLinearWeights(PackedWeight.Pack(weight, outFeatures, inFeatures), bias.ToArray());

    public void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y) =>
        LinearRows(F(x), weights, rows, epilogue, F(y));

    internal void LinearRows(float[] x, ILinearWeights weights, int rows, LinearEpilogue epilogue, float[] y)
    {
        var w = (CpuLinearWeights)weights;
        var gemmEpilogue = epilogue switch
        {
            LinearEpilogue.Bias => GemmEpilogue.Bias,
            LinearEpilogue.BiasGelu => GemmEpilogue.BiasGelu,
            LinearEpilogue.BiasAccumulate => GemmEpilogue.Accumulate,
            _ => throw new ArgumentOutOfRangeException(nameof(epilogue)),
        };
        CpuGemm.Linear(x.AsSpan(0, rows * w.InFeatures), rows, w.Packed, w.Bias, y.AsSpan(0, rows * w.OutFeatures), gemmEpilogue, MaxThreads);
    }
}
