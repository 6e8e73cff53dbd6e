using ToMe.Backends.Cuda;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The host side of half storage. The CUDA backend's ops in bf16 and fp16 passes (LayerNorm, the Linear layers with
/// gelu_cast, the patch embedding, attention with the metric and class row) are library op checks
/// (OpChecks.Half.cs), run by <see cref="CudaOpCheckTests"/> in every thread order and by <c>tome kernels test</c>.
/// </summary>
public class HalfOpTests
{
    [Fact]
    public void HostConversionRoundsLikeTheKernels()
    {
        var values = Gpu.Random(4096, seed: 3, scale: 70000f).Concat([0f, -0f, 65504f, 65520f, 1e-8f, float.MaxValue, float.PositiveInfinity]).ToArray();
        foreach (bool bf16 in new[] { false, true })
        {
            var codes = new ushort[values.Length];
            FloatStorages.ToHalf(values, codes, bf16 ? FloatStorage.BF16 : FloatStorage.F16);
            Assert.Equal(HalfBits.Encode(values, bf16), codes);
        }
    }
}
