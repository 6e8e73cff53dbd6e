using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Kernels;
using ToMe.Backends.Checks;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The half-precision attentions, launched as <see cref="AttentionKernels"/> describes them (the launches a backend's
/// dispatch makes), against the CPU backend's fp32 attention on the same half-rounded inputs: the output, ToMe's metric
/// (keys averaged over heads) and ToMeCIS's class row, each with sentinels past its end. Every case runs in the
/// emulator's forward, reverse and random thread orders, so a missing barrier cannot hide behind a lucky order.
/// Tolerances state the precision: P is rounded to the input type before P·V and the output is rounded once more, each
/// at most one unit in the last place (u = 2⁻¹¹ for fp16, 2⁻⁸ for bf16) of values bounded by max |v| = 1.5:
/// atol 4u·1.5, rtol 2u. The metric sums the same half keys in the same order: bit-identical. The class row is fp32
/// softmax of fp32 logits (exact half products, summed in another order): atol 1e-6, rtol 1e-4.
/// </summary>
public class FlashAttentionTests
{
    /// <summary>The library's OpChecks.SizeMode, public for theory data (same members, same order: cast between them).</summary>
    public enum SizeMode { None, Random, WithZeros, AllZero }

    /// <summary>Which kernel family: tensor cores by mma.sync m16n8k16 (sm_80+), by m8n8k4 (sm_70+), or CUDA cores.</summary>
    public enum Path { M16n8k16, M8n8k4, CudaCores }

    private const int Pad = 64;
    private const ushort Sentinel = 0x7bad;
    private const float FloatSentinel = -12345.5f;

    private static readonly (Path Path, bool Bf16, int Batch, int Tokens, int Heads, int HeadDim, SizeMode Size)[] Cases =
    [
        (Path.M16n8k16, false, 1, 1, 3, 64, SizeMode.Random),
        (Path.M16n8k16, true, 1, 2, 2, 64, SizeMode.None),
        (Path.M16n8k16, false, 3, 197, 3, 64, SizeMode.Random),
        (Path.M16n8k16, true, 1, 198, 2, 64, SizeMode.WithZeros),
        (Path.M16n8k16, false, 1, 577, 2, 64, SizeMode.Random),
        (Path.M16n8k16, true, 1, 1025, 1, 64, SizeMode.WithZeros),
        (Path.M16n8k16, false, 2, 64, 1, 64, SizeMode.Random),
        (Path.M16n8k16, true, 1, 65, 2, 64, SizeMode.Random),
        (Path.M16n8k16, false, 1, 50, 2, 64, SizeMode.AllZero),
        (Path.M16n8k16, true, 3, 197, 2, 32, SizeMode.Random),
        (Path.M16n8k16, false, 1, 1, 2, 32, SizeMode.None),
        (Path.M16n8k16, false, 1, 197, 3, 80, SizeMode.WithZeros),
        (Path.M16n8k16, true, 1, 65, 1, 80, SizeMode.Random),
        (Path.M16n8k16, true, 1, 197, 2, 96, SizeMode.Random),
        (Path.M16n8k16, false, 1, 33, 1, 96, SizeMode.None),
        (Path.M16n8k16, false, 3, 129, 2, 128, SizeMode.Random),
        (Path.M16n8k16, true, 1, 2, 1, 128, SizeMode.WithZeros),
        (Path.M8n8k4, false, 1, 1, 3, 64, SizeMode.Random),
        (Path.M8n8k4, false, 3, 197, 2, 64, SizeMode.WithZeros),
        (Path.M8n8k4, false, 1, 577, 1, 64, SizeMode.Random),
        (Path.M8n8k4, false, 1, 1025, 1, 32, SizeMode.Random),
        (Path.M8n8k4, false, 1, 2, 2, 80, SizeMode.None),
        (Path.M8n8k4, false, 1, 65, 2, 96, SizeMode.Random),
        (Path.M8n8k4, false, 1, 197, 1, 128, SizeMode.Random),
        (Path.M8n8k4, false, 1, 50, 2, 64, SizeMode.AllZero),
        (Path.CudaCores, false, 1, 1, 3, 64, SizeMode.Random),
        (Path.CudaCores, true, 3, 197, 3, 64, SizeMode.WithZeros),
        (Path.CudaCores, false, 1, 577, 1, 32, SizeMode.Random),
        (Path.CudaCores, true, 1, 65, 2, 80, SizeMode.Random),
        (Path.CudaCores, false, 1, 197, 1, 96, SizeMode.WithZeros),
        (Path.CudaCores, true, 1, 129, 2, 128, SizeMode.Random),
        (Path.CudaCores, false, 1, 50, 2, 64, SizeMode.AllZero),
    ];

    public static TheoryData<Path, bool, int, int, int, int, SizeMode, ThreadOrder> AttentionCases()
    {
        var data = new TheoryData<Path, bool, int, int, int, int, SizeMode, ThreadOrder>();
        foreach (var c in Cases)
            foreach (var order in Enum.GetValues<ThreadOrder>())
                data.Add(c.Path, c.Bf16, c.Batch, c.Tokens, c.Heads, c.HeadDim, c.Size, order);
        return data;
    }

    [Theory]
    [MemberData(nameof(AttentionCases))]
    public void MatchesCpuAttentionOnHalfInputs(Path path, bool bf16, int batch, int tokens, int heads, int headDim, SizeMode sizeMode, ThreadOrder order)
    {
        int c = heads * headDim, rows = batch * tokens;
        var codes = HalfBits.Encode(Gpu.Random(rows * 3 * c, seed: tokens + heads + headDim, scale: 1.5f), bf16);
        float[]? size = sizeMode == SizeMode.None ? null : OpChecks.AttentionSizes((OpChecks.SizeMode)sizeMode, rows, tokens);
        var (expected, expectedKeyMean, expectedClass) = CpuAttention(HalfBits.Decode(codes, bf16), size, batch, tokens, heads, headDim);

        var storage = bf16 ? FloatStorage.BF16 : FloatStorage.F16;
        var variant = path == Path.CudaCores ? AttentionKernels.OnCudaCores(storage, headDim) : AttentionKernels.Select(path == Path.M16n8k16 ? 80 : 70, storage, headDim);
        Assert.Equal(path switch
        {
            Path.M16n8k16 => AttentionInstructions.MmaM16N8K16,
            Path.M8n8k4 => AttentionInstructions.MmaM8N8K4,
            _ => AttentionInstructions.CudaCores,
        }, variant.Instructions);

        using var context = Gpu.Context();
        using var kernels = new KernelLibrary(context);
        using var stream = new CudaStream(context);
        using var dqkv = DeviceBuffer<ushort>.FromHost(stream, codes);
        using var dsize = size is null ? null : DeviceBuffer<float>.FromHost(stream, size);
        using var dout = DeviceBuffer<ushort>.FromHost(stream, Enumerable.Repeat(Sentinel, rows * c + Pad).ToArray());
        using var dkeyMean = DeviceBuffer<float>.FromHost(stream, Enumerable.Repeat(FloatSentinel, rows * headDim + Pad).ToArray());
        using var dclass = DeviceBuffer<float>.FromHost(stream, Enumerable.Repeat(FloatSentinel, rows + Pad).ToArray());
        using var scratch = DeviceBuffer<float>.Allocate(context, (int)variant.ClassScratchFloats(batch, tokens, heads));
        var call = new AttentionCall(dqkv.Pointer, dsize?.Pointer ?? 0UL, batch, tokens, heads, headDim, 1f / MathF.Sqrt(headDim),
            dout.Pointer, dkeyMean.Pointer, dclass.Pointer, scratch.Pointer);
        using (ThreadOrders.Use(order))
            foreach (var launch in variant.Launches(call))
                kernels.Function(launch.File, launch.EntryPoint).Launch(stream, launch.Grid, launch.Block, 0, launch.Args);

        var result = dout.ToArray(stream);
        var keyMean = dkeyMean.ToArray(stream);
        var cls = dclass.ToArray(stream);
        float u = bf16 ? 1f / 256 : 1f / 2048;
        var what = $"{variant.EntryPoint} B={batch} T={tokens} H={heads} {sizeMode} {order}";
        Gpu.AssertClose(expected, HalfBits.Decode(result[..(rows * c)], bf16), 4 * u * 1.5f, 2 * u, what);
        Assert.All(result[(rows * c)..], v => Assert.Equal(Sentinel, v));
        Assert.True(expectedKeyMean.AsSpan().SequenceEqual(keyMean.AsSpan(0, rows * headDim)), $"{what}: key mean differs from the CPU's");
        Assert.All(keyMean[(rows * headDim)..], v => Assert.Equal(FloatSentinel, v));
        Gpu.AssertClose(expectedClass, cls[..rows], 1e-6f, 1e-4f, $"{what} class row");
        Assert.All(cls[rows..], v => Assert.Equal(FloatSentinel, v));
    }

    /// <summary>The planted-bug tests' entry: one m16n8k16 case in the default (random) order.</summary>
    internal void FlashMatchesCpuAttentionOnHalfInputs(bool bf16, int batch, int tokens, int heads, SizeMode sizeMode) =>
        MatchesCpuAttentionOnHalfInputs(Path.M16n8k16, bf16, batch, tokens, heads, 64, sizeMode, ThreadOrder.Random);

    /// <summary>Every variant the description names resolves to an entry point of its file (on any architecture's build).</summary>
    [Fact]
    public void EveryDescribedVariantHasItsEntryPoints()
    {
        using var context = Gpu.Context();
        using var kernels = new KernelLibrary(context);
        foreach (int cc in new[] { 70, 75, 80, 86, 89, 90 })
        {
            foreach (var storage in Enum.GetValues<FloatStorage>())
            {
                foreach (int d in AttentionKernels.HeadDims)
                {
                    var variant = AttentionKernels.Select(cc, storage, d);
                    var call = new AttentionCall(1, 0, 1, 1, 1, d, 1f, 1, 1, 1, 1);
                    foreach (var launch in variant.Launches(call))
                        Assert.NotNull(kernels.Function(launch.File, launch.EntryPoint));
                    foreach (var launch in AttentionKernels.OnCudaCores(storage, d).Launches(call))
                        Assert.NotNull(kernels.Function(launch.File, launch.EntryPoint));
                }
            }
        }
        Assert.Throws<NotSupportedException>(() => AttentionKernels.Select(80, FloatStorage.F16, 48));
        Assert.Throws<NotSupportedException>(() => AttentionKernels.Select(61, FloatStorage.F32, 64));
        Assert.Equal(AttentionInstructions.CudaCores, AttentionKernels.Select(75, FloatStorage.BF16, 64).Instructions);
        Assert.Equal(AttentionInstructions.MmaM8N8K4, AttentionKernels.Select(75, FloatStorage.F16, 64).Instructions);
        Assert.Equal(AttentionInstructions.MmaM16N8K16, AttentionKernels.Select(90, FloatStorage.BF16, 128).Instructions);
        Assert.Equal(AttentionInstructions.CudaCores, AttentionKernels.Select(90, FloatStorage.F32, 128).Instructions);
    }

    private static (float[] Output, float[] KeyMean, float[] Class) CpuAttention(float[] qkv, float[]? size, int batch, int tokens, int heads, int headDim)
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
        var cls = cpu.AllocateFloat(rows);
        cpu.Attention(dqkv, dsize, batch, tokens, heads, headDim, output, keyMean, cls);
        var values = new float[rows * c];
        var metric = new float[rows * headDim];
        var row = new float[rows];
        cpu.Download(output, values);
        cpu.Download(keyMean, metric);
        cpu.Download(cls, row);
        return (values, metric, row);
    }
}
