using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Kernels;
using ToMe.Backends.Checks;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The half-precision attentions — kernels/flash_attention.cu (tensor cores, sm_80+) and attention.cu's fp16/bf16 entry
/// points (CUDA cores, every architecture) — against the CPU backend's fp32 attention on the same half-rounded inputs,
/// with sentinels past the output. Tolerances state the precision: P is rounded to the input
/// type before P·V and the output is rounded once more, each at most one unit in the last place (u = 2⁻¹¹ for fp16,
/// 2⁻⁸ for bf16) of values bounded by max |v| = 1.5: atol 4u·1.5, rtol 2u.
/// </summary>
public class FlashAttentionTests
{
    /// <summary>The library's OpChecks.SizeMode, public for theory data (same members, same order: cast between them).</summary>
    public enum SizeMode { None, Random, WithZeros, AllZero }

    private const int Pad = 64;
    private const ushort Sentinel = 0x7bad;

    [Theory]
    [InlineData(false, 1, 1, 3, SizeMode.Random)]
    [InlineData(true, 1, 2, 2, SizeMode.None)]
    [InlineData(false, 3, 197, 3, SizeMode.Random)]
    [InlineData(true, 2, 197, 2, SizeMode.Random)]
    [InlineData(false, 1, 198, 2, SizeMode.WithZeros)]
    [InlineData(true, 1, 577, 2, SizeMode.Random)]
    [InlineData(false, 1, 1025, 2, SizeMode.WithZeros)]
    [InlineData(true, 1, 1025, 1, SizeMode.Random)]
    [InlineData(false, 2, 64, 1, SizeMode.Random)]
    [InlineData(true, 1, 65, 2, SizeMode.WithZeros)]
    [InlineData(false, 1, 50, 2, SizeMode.AllZero)]
    public void FlashMatchesCpuAttentionOnHalfInputs(bool bf16, int batch, int tokens, int heads, SizeMode sizeMode) =>
        MatchesCpu(tensorCores: true, bf16, batch, tokens, heads, 64, sizeMode);

    [Theory]
    [InlineData(false, 1, 1, 3, 64, SizeMode.Random)]
    [InlineData(true, 3, 197, 3, 64, SizeMode.WithZeros)]
    [InlineData(false, 1, 577, 2, 64, SizeMode.Random)]
    [InlineData(true, 1, 1025, 1, 64, SizeMode.Random)]
    [InlineData(false, 2, 197, 2, 32, SizeMode.None)]
    [InlineData(true, 1, 65, 2, 80, SizeMode.Random)]
    [InlineData(false, 1, 197, 1, 96, SizeMode.WithZeros)]
    [InlineData(true, 1, 197, 2, 128, SizeMode.Random)]
    [InlineData(false, 1, 50, 2, 64, SizeMode.AllZero)]
    public void CudaCoreHalfAttentionMatchesCpu(bool bf16, int batch, int tokens, int heads, int headDim, SizeMode sizeMode) =>
        MatchesCpu(tensorCores: false, bf16, batch, tokens, heads, headDim, sizeMode);

    private static void MatchesCpu(bool tensorCores, bool bf16, int batch, int tokens, int heads, int headDim, SizeMode sizeMode)
    {
        int c = heads * headDim, rows = batch * tokens;
        var codes = HalfBits.Encode(Gpu.Random(rows * 3 * c, seed: tokens + heads, scale: 1.5f), bf16);
        float[]? size = sizeMode == SizeMode.None ? null : OpChecks.AttentionSizes((OpChecks.SizeMode)sizeMode, rows, tokens);
        var expected = CpuAttention(HalfBits.Decode(codes, bf16), size, batch, tokens, heads, headDim);

        using var context = Gpu.Context();
        using var kernels = new KernelLibrary(context);
        using var stream = new CudaStream(context);
        using var dqkv = DeviceBuffer<ushort>.FromHost(stream, codes);
        using var dsize = size is null ? null : DeviceBuffer<float>.FromHost(stream, size);
        using var dout = DeviceBuffer<ushort>.FromHost(stream, Enumerable.Repeat(Sentinel, rows * c + Pad).ToArray());
        float scale = 1f / MathF.Sqrt(headDim);
        string type = bf16 ? "bf16" : "f16";
        var args = new KernelArgs().Add(dqkv).Add(dsize?.Pointer ?? 0UL).Add(tokens).Add(heads).Add(scale).Add(dout);
        if (tensorCores)
            kernels.Function("flash_attention.cu", $"flash_attention_{type}_d{headDim}")
                .Launch(stream, new Dim3((uint)((tokens + 63) / 64), (uint)heads, (uint)batch), 128, 0, args);
        else
            kernels.Function("attention.cu", $"attention_{type}_d{headDim}")
                .Launch(stream, new Dim3((uint)((tokens + 15) / 16), (uint)heads, (uint)batch), 128, 0, args.Add(0UL));

        var result = dout.ToArray(stream);
        float u = bf16 ? 1f / 256 : 1f / 2048;
        var what = $"{(tensorCores ? "flash" : "CUDA-core")} attention {type} B={batch} T={tokens} H={heads} D={headDim} {sizeMode}";
        Gpu.AssertClose(expected, HalfBits.Decode(result[..(rows * c)], bf16), 4 * u * 1.5f, 2 * u, what);
        Assert.All(result[(rows * c)..], v => Assert.Equal(Sentinel, v));
    }

    private static float[] CpuAttention(float[] qkv, float[]? size, int batch, int tokens, int heads, int headDim)
    {
        using var cpu = new CpuBackend(maxThreads: 4);
        int rows = batch * tokens, c = heads * headDim;
        var dqkv = cpu.AllocateFloat(qkv.Length);
        cpu.Upload(qkv, dqkv);
        DeviceBuffer? dsize = null;
        if (size is not null)
        {
            dsize = cpu.AllocateFloat(size.Length);
            cpu.Upload(size, dsize);
        }
        var output = cpu.AllocateFloat(rows * c);
        var keyMean = cpu.AllocateFloat(rows * headDim);
        cpu.Attention(dqkv, dsize, batch, tokens, heads, headDim, output, keyMean, null);
        var values = new float[rows * c];
        cpu.Download(output, values);
        return values;
    }
}
