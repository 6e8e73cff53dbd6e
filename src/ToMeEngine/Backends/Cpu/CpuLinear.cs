using System.Numerics.Tensors;

namespace ToMe.Backends.Cpu;

internal sealed class CpuLinearWeights(float[] weight, float[] bias, int outFeatures, int inFeatures) : ILinearWeights
{
    public readonly float[] Weight = weight; // [out, in]
    public readonly float[] Bias = bias;     // [out]

    public int OutFeatures { get; } = outFeatures;
    public int InFeatures { get; } = inFeatures;

    public void Dispose() { }
}

internal sealed partial class CpuBackend
{
    public ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias) =>
        new CpuLinearWeights(weight.ToArray(), bias.ToArray(), outFeatures, inFeatures);

    public void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y) =>
        LinearRows(F(x), weights, rows, epilogue, F(y));

    internal void LinearRows(float[] x, ILinearWeights weights, int rows, LinearEpilogue epilogue, float[] y)
    {
        var w = (CpuLinearWeights)weights;
        int n = w.OutFeatures, k = w.InFeatures;
        For(rows, 8, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                var a = x.AsSpan(row * k, k);
                var dst = y.AsSpan(row * n, n);
                for (int o = 0; o < n; o++)
                {
                    float v = TensorPrimitives.Dot(a, w.Weight.AsSpan(o * k, k)) + w.Bias[o];
                    dst[o] = epilogue == LinearEpilogue.BiasAccumulate ? dst[o] + v : v;
                }
                if (epilogue == LinearEpilogue.BiasGelu)
                    CpuRowOps.GeluInPlace(dst);
            }
        });
    }
}
