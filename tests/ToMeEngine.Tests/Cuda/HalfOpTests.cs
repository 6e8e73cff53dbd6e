using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The CUDA backend's ops in bf16 and fp16 passes against the CPU backend's fp32 ops on the same half-rounded inputs and
/// weights, at awkward shapes, with sentinels past every output. Tolerances state the precision: u = 2⁻⁸ (bf16) or
/// 2⁻¹¹ (fp16) is the unit roundoff, and an output stored in half is rounded once (relative error at most u); fp32
/// outputs differ only by the order of fp32 sums.
/// </summary>
public class HalfOpTests
{
    private const int Pad = 37;
    private const float Sentinel = -1232f;   // exact in fp32, fp16 and bf16

    private static double Unit(bool bf16) => bf16 ? 1.0 / 256 : 1.0 / 2048;

    private static Precision PrecisionOf(bool bf16) => bf16 ? Precision.BFloat16 : Precision.Float16;

    private static float[] Rounded(float[] values, bool bf16) => HalfBits.Decode(HalfBits.Encode(values, bf16), bf16);

    /// <summary>A device buffer (activation storage when <paramref name="half"/>) holding values then Pad sentinels.</summary>
    private static DeviceBuffer Upload(IBackend backend, float[] values, Precision? half)
    {
        var buffer = half is { } p ? backend.AllocateActivation(values.Length + Pad, p) : backend.AllocateFloat(values.Length + Pad);
        backend.Upload([.. values, .. Enumerable.Repeat(Sentinel, Pad)], buffer);
        return buffer;
    }

    /// <summary>The first <paramref name="length"/> values, after checking the sentinels past them are intact.</summary>
    private static float[] Download(IBackend backend, DeviceBuffer buffer, int length, string what)
    {
        var all = new float[length + Pad];
        backend.Download(buffer, all);
        for (int i = length; i < all.Length; i++)
            Assert.True(all[i] == Sentinel, $"{what}: element {i} past the output's {length} was written ({all[i]})");
        return all[..length];
    }

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

    [Theory]
    [InlineData(true, 1, 192)]
    [InlineData(false, 2, 67)]
    [InlineData(true, 197, 192)]
    [InlineData(false, 577, 64)]
    [InlineData(true, 1025, 33)]
    public void LayerNormRoundsItsOutputOnce(bool bf16, int rows, int channels)
    {
        var x = Gpu.Random(rows * channels, seed: rows, scale: 3f);
        var gamma = Gpu.Random(channels, seed: 5, scale: 2f);
        var beta = Gpu.Random(channels, seed: 6);
        using var cpu = new CpuBackend(2);
        var expected = Cpu(cpu, b => cpu.LayerNorm(b.Arg(x), b.Arg(gamma), b.Arg(beta), rows, channels, 1e-6f, b.Out(rows * channels)));
        using var gpu = BackendPair.CreateGpu();
        using var xb = Upload(gpu, x, null);
        using var gb = Upload(gpu, gamma, null);
        using var bb = Upload(gpu, beta, null);
        using var y = Upload(gpu, new float[rows * channels], PrecisionOf(bf16));
        gpu.LayerNorm(xb, gb, bb, rows, channels, 1e-6f, y);
        var actual = Download(gpu, y, rows * channels, "layer norm");
        Close.AssertAll(expected, actual, atol: 1e-5, rtol: Unit(bf16) + 1e-5, what: $"layer norm {(bf16 ? "bf16" : "fp16")} {rows}×{channels}");
    }

    [Theory]
    [InlineData(true, 1, 64, 24, 0)]
    [InlineData(false, 2, 72, 40, 1)]
    [InlineData(true, 197, 64, 48, 2)]
    [InlineData(false, 197, 40, 24, 0)]
    [InlineData(true, 577, 32, 16, 1)]
    [InlineData(false, 1025, 24, 8, 2)]
    public void LinearOnHalfOperandsAccumulatesInFp32(bool bf16, int rows, int inFeatures, int outFeatures, int epilogueValue)
    {
        var epilogue = (LinearEpilogue)epilogueValue;   // 0 Bias, 1 BiasGelu, 2 BiasAccumulate
        var precision = PrecisionOf(bf16);
        var x = Rounded(Gpu.Random(rows * inFeatures, seed: rows + 1), bf16);
        var w = Gpu.Random(outFeatures * inFeatures, seed: 7, scale: 0.3f);
        var bias = Gpu.Random(outFeatures, seed: 8);
        var residual = Gpu.Random(rows * outFeatures, seed: 9, scale: 4f);
        bool accumulate = epilogue == LinearEpilogue.BiasAccumulate;

        using var cpu = new CpuBackend(2);
        using var cpuWeights = cpu.PrepareLinear(Rounded(w, bf16), outFeatures, inFeatures, bias);
        var expected = Cpu(cpu, b => b.Do(y => cpu.Linear(b.Arg(x), cpuWeights, rows, epilogue, y), accumulate ? residual : new float[rows * outFeatures]));

        using var gpu = BackendPair.CreateGpu();
        using var weights = gpu.PrepareLinear(w, outFeatures, inFeatures, bias, precision);
        Assert.Equal(precision, weights.Precision);
        using var xb = Upload(gpu, x, precision);
        using var yb = Upload(gpu, accumulate ? residual : new float[rows * outFeatures], accumulate ? null : precision);
        gpu.Linear(xb, weights, rows, epilogue, yb);
        var actual = Download(gpu, yb, rows * outFeatures, $"linear {epilogue}");
        // fp32 sums of `in` products in another order (relative 1e-6 each), then one rounding to half unless accumulating.
        double rtol = accumulate ? 1e-5 : Unit(bf16) + 1e-5;
        Close.AssertAll(expected, actual, atol: 1e-4, rtol: rtol, what: $"linear {epilogue} {(bf16 ? "bf16" : "fp16")} {rows}×{inFeatures}→{outFeatures}");
    }

    [Theory]
    [InlineData(true, 1, 1)]
    [InlineData(false, 2, 3)]
    [InlineData(true, 3, 2)]
    public void PatchEmbedIsATensorCoreGemm(bool bf16, int batch, int prefixTokens)
    {
        // The bf16 pass runs its patch embedding in TF32 (LinearLayer.DefaultPrecision); fp16 in fp16.
        var precision = bf16 ? Precision.TensorFloat32 : Precision.Float16;
        const int size = 28, patch = 14, c = 24, k = 3 * patch * patch;
        int tokens = prefixTokens + 4;
        var images = Gpu.Random(batch * 3 * size * size, seed: 11, scale: 2f);
        var w = Gpu.Random(c * k, seed: 12, scale: 0.1f);
        var bias = Gpu.Random(c, seed: 13);
        var prefix = Gpu.Random(prefixTokens * c, seed: 14);
        var pos = Gpu.Random(tokens * c, seed: 15);

        using var cpu = new CpuBackend(2);
        // The CPU twin gets what the tensor cores see: fp16-rounded pixels and weights (TF32 rounding is finer: within rtol).
        var cpuImages = bf16 ? images : Rounded(images, false);
        using var cpuWeights = cpu.PrepareLinear(bf16 ? w : Rounded(w, false), c, k, bias);
        var expected = Cpu(cpu, b => b.Do(x => cpu.PatchEmbed(b.Arg(cpuImages), b.Arg(prefix), b.Arg(pos), cpuWeights, batch, size, patch, prefixTokens, x),
            new float[batch * tokens * c]));

        using var gpu = BackendPair.CreateGpu();
        using var weights = gpu.PrepareLinear(w, c, k, bias, precision);
        using var ib = Upload(gpu, images, null);
        using var pb = Upload(gpu, prefix, null);
        using var posb = Upload(gpu, pos, null);
        using var xb = Upload(gpu, new float[batch * tokens * c], null);
        gpu.PatchEmbed(ib, pb, posb, weights, batch, size, patch, prefixTokens, xb);
        var actual = Download(gpu, xb, batch * tokens * c, "patch embedding");
        Close.AssertAll(expected, actual, atol: bf16 ? 2e-2 : 1e-4, rtol: bf16 ? 4e-3 : 1e-5, what: $"patch embedding {precision.Name()}");
    }

    [Theory]
    [InlineData(true, 1, 1, 3, true)]
    [InlineData(false, 2, 197, 3, true)]
    [InlineData(true, 1, 577, 2, false)]
    [InlineData(false, 3, 65, 1, false)]
    public void AttentionMetricClassRowAndImportanceInFp32FromHalfQkv(bool bf16, int batch, int tokens, int heads, bool classRow)
    {
        // classRow: attention.cu's CUDA-core half kernel (it writes the class row's statistics); else flash attention.
        const int d = 64;
        int c = heads * d, rows = batch * tokens;
        var precision = PrecisionOf(bf16);
        var qkv = Rounded(Gpu.Random(rows * 3 * c, seed: tokens, scale: 1.5f), bf16);
        var size = Enumerable.Range(0, rows).Select(i => 1f + i % 5).ToArray();

        using var cpu = new CpuBackend(2);
        var cpuQkv = cpu.AllocateFloat(qkv.Length);
        cpu.Upload(qkv, cpuQkv);
        var cpuSize = cpu.AllocateFloat(rows);
        cpu.Upload(size, cpuSize);
        var outputs = Enumerable.Range(0, 4).Select(i => cpu.AllocateFloat(i == 0 ? rows * c : i == 1 ? rows * d : rows)).ToArray();
        cpu.Attention(cpuQkv, cpuSize, batch, tokens, heads, d, outputs[0], outputs[1], classRow ? outputs[2] : null);
        if (classRow)
            cpu.ClassImportance(cpuQkv, outputs[2], batch, tokens, heads, d, outputs[3]);
        var expected = outputs.Select((o, i) => { var h = new float[o.Length]; cpu.Download(o, h); return h; }).ToArray();

        using var gpu = BackendPair.CreateGpu();
        using var qb = Upload(gpu, qkv, precision);
        using var sb = Upload(gpu, size, null);
        using var ob = Upload(gpu, new float[rows * c], precision);
        using var kb = Upload(gpu, new float[rows * d], null);
        using var cb = Upload(gpu, new float[rows], null);
        using var scoreb = Upload(gpu, new float[rows], null);
        gpu.Attention(qb, sb, batch, tokens, heads, d, ob, kb, classRow ? cb : null);
        if (classRow)
            gpu.ClassImportance(qb, cb, batch, tokens, heads, d, scoreb);
        double u = Unit(bf16);
        Close.AssertAll(expected[0], Download(gpu, ob, rows * c, "attention output"), atol: 4 * u * 1.5, rtol: 2 * u, what: "attention output");
        Close.AssertAll(expected[1], Download(gpu, kb, rows * d, "key mean"), atol: 1e-6, rtol: 1e-6, what: "key mean (fp32 from half keys)");
        if (classRow)
        {
            Close.AssertAll(expected[2], Download(gpu, cb, rows, "class row"), atol: 1e-6, rtol: 1e-4, what: "class attention row");
            Close.AssertAll(expected[3], Download(gpu, scoreb, rows, "class importance"), atol: 1e-6, rtol: 1e-4, what: "class importance");
        }
        foreach (var o in outputs)
            o.Dispose();
        cpuQkv.Dispose();
        cpuSize.Dispose();
    }

    /// <summary>Runs one CPU op over fresh buffers and returns its output.</summary>
    private static float[] Cpu(CpuBackend cpu, Action<CpuOp> op)
    {
        var builder = new CpuOp(cpu);
        try
        {
            op(builder);
            return builder.Result();
        }
        finally
        {
            builder.Dispose();
        }
    }

    private sealed class CpuOp(CpuBackend cpu) : IDisposable
    {
        private readonly List<DeviceBuffer> owned = [];
        private (DeviceBuffer Buffer, int Length)? output;

        public DeviceBuffer Arg(float[] values)
        {
            var b = cpu.AllocateFloat(values.Length);
            cpu.Upload(values, b);
            owned.Add(b);
            return b;
        }

        public DeviceBuffer Out(int length)
        {
            var b = Arg(new float[length]);
            output = (b, length);
            return b;
        }

        public void Do(Action<DeviceBuffer> run, float[] initial)
        {
            var b = Arg(initial);
            output = (b, initial.Length);
            run(b);
        }

        public float[] Result()
        {
            var (buffer, length) = output!.Value;
            var host = new float[length];
            cpu.Download(buffer, host);
            return host;
        }

        public void Dispose()
        {
            foreach (var b in owned)
                b.Dispose();
        }
    }
}
