using ToMe.Backends;

namespace ToMe.Tests.Cuda;

/// <summary>The CUDA backend's dense ops against their CPU twins on awkward shapes, with sentinel tails that must stay untouched.</summary>
public class CudaBackendOpTests
{
    [Theory]
    [InlineData(1, 32, 8, 1)]
    [InlineData(3, 30, 8, 2)]   // 30 is not a multiple of 8: the remainder is ignored, as the conv does
    [InlineData(3, 48, 16, 0)]
    public void PatchEmbedMatchesCpu(int batch, int imageSize, int patchSize, int prefixTokens)
    {
        using var pair = BackendPair.Create();
        const int channels = 24;
        int grid = imageSize / patchSize, k = 3 * patchSize * patchSize, tokens = prefixTokens + grid * grid;
        var weight = Gpu.Random(channels * k, seed: 1);
        var bias = Gpu.Random(channels, seed: 2);
        var images = pair.Floats(Gpu.Random(batch * 3 * imageSize * imageSize, seed: 3));
        var prefix = prefixTokens > 0 ? pair.Floats(Gpu.Random(prefixTokens * channels, seed: 4)) : default;
        var pos = pair.Floats(Gpu.Random(tokens * channels, seed: 5));
        var x = pair.FloatOutput(batch * tokens * channels);

        pair.Cpu.PatchEmbed(images.Cpu, prefix.Cpu, pos.Cpu, pair.CpuLinear(weight, channels, k, bias), batch, imageSize, patchSize, prefixTokens, x.Cpu);
        pair.Gpu.PatchEmbed(images.Gpu, prefix.Gpu, pos.Gpu, pair.GpuLinear(weight, channels, k, bias), batch, imageSize, patchSize, prefixTokens, x.Gpu);

        int n = batch * tokens * channels;
        Gpu.AssertClose(pair.ReadCpu(x.Cpu, n), pair.ReadGpu(x.Gpu, n, "patch embed"), 1e-5f, 1e-5f, $"patch embed B={batch} S={imageSize} P={patchSize} p={prefixTokens}");
    }

    [Theory]
    [InlineData(1, 37, 19, 0)]
    [InlineData(197, 64, 96, 1)]
    [InlineData(594, 192, 576, 0)]
    [InlineData(198, 96, 40, 2)]
    [InlineData(3, 768, 1000, 0)]
    [InlineData(2, 384, 1536, 1)]
    public void LinearMatchesCpu(int rows, int inFeatures, int outFeatures, int epilogueValue)
    {
        var epilogue = (LinearEpilogue)epilogueValue; // 0 Bias, 1 BiasGelu, 2 BiasAccumulate (the enum is internal)
        using var pair = BackendPair.Create();
        var weight = Gpu.Random(outFeatures * inFeatures, seed: 6, scale: 0.2f);
        var bias = Gpu.Random(outFeatures, seed: 7);
        var x = pair.Floats(Gpu.Random(rows * inFeatures, seed: 8, scale: 2f));
        var y = pair.Floats(Gpu.Random(rows * outFeatures, seed: 9)); // the residual for BiasAccumulate

        pair.Cpu.Linear(x.Cpu, pair.CpuLinear(weight, outFeatures, inFeatures, bias), rows, epilogue, y.Cpu);
        pair.Gpu.Linear(x.Gpu, pair.GpuLinear(weight, outFeatures, inFeatures, bias), rows, epilogue, y.Gpu);

        int n = rows * outFeatures;
        Gpu.AssertClose(pair.ReadCpu(y.Cpu, n), pair.ReadGpu(y.Gpu, n, "linear"), 2e-5f, 1e-5f, $"linear {rows}x{inFeatures}->{outFeatures} {epilogue}");
    }

    [Theory]
    [InlineData(1, 768, false)]
    [InlineData(591, 192, true)]
    [InlineData(5, 37, false)]
    public void LayerNormMatchesCpu(int rows, int channels, bool inPlace)
    {
        using var pair = BackendPair.Create();
        var x = pair.Floats(Gpu.Random(rows * channels, seed: 10, scale: 3f));
        var weight = pair.Floats(Gpu.Random(channels, seed: 11));
        var bias = pair.Floats(Gpu.Random(channels, seed: 12));
        var y = inPlace ? x : pair.FloatOutput(rows * channels);

        pair.Cpu.LayerNorm(x.Cpu, weight.Cpu, bias.Cpu, rows, channels, 1e-6f, y.Cpu);
        pair.Gpu.LayerNorm(x.Gpu, weight.Gpu, bias.Gpu, rows, channels, 1e-6f, y.Gpu);

        int n = rows * channels;
        Gpu.AssertClose(pair.ReadCpu(y.Cpu, n), pair.ReadGpu(y.Gpu, n, "layer norm"), 1e-5f, 1e-5f, $"layer norm {rows}x{channels}");
    }

    [Fact]
    public void GatherPrefixMatchesCpuExactly()
    {
        using var pair = BackendPair.Create();
        const int batch = 3, tokens = 197, channels = 192, count = 2;
        var x = pair.Floats(Gpu.Random(batch * tokens * channels, seed: 13));
        var pooled = pair.FloatOutput(batch * count * channels);

        pair.Cpu.GatherPrefix(x.Cpu, batch, tokens, channels, count, pooled.Cpu);
        pair.Gpu.GatherPrefix(x.Gpu, batch, tokens, channels, count, pooled.Gpu);

        int n = batch * count * channels;
        Assert.Equal(pair.ReadCpu(pooled.Cpu, n), pair.ReadGpu(pooled.Gpu, n, "gather prefix"));
    }

    [Theory]
    [InlineData(3, 197, 192, 1, false)]
    [InlineData(1, 1, 8, 0, false)]
    [InlineData(2, 50, 33, 0, true)] // every size 0: zeros, not NaN
    public void WeightedMeanPoolMatchesCpu(int batch, int tokens, int channels, int skip, bool zeroSizes)
    {
        using var pair = BackendPair.Create();
        var x = pair.Floats(Gpu.Random(batch * tokens * channels, seed: 14));
        var random = new Random(15);
        var size = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => zeroSizes ? 0f : random.Next(1, 6)).ToArray());
        var pooled = pair.FloatOutput(batch * channels);

        pair.Cpu.WeightedMeanPool(x.Cpu, size.Cpu, batch, tokens, channels, skip, pooled.Cpu);
        pair.Gpu.WeightedMeanPool(x.Gpu, size.Gpu, batch, tokens, channels, skip, pooled.Gpu);

        int n = batch * channels;
        // Both accumulate exact products in double in token order: expected bit-identical.
        Gpu.AssertClose(pair.ReadCpu(pooled.Cpu, n), pair.ReadGpu(pooled.Gpu, n, "weighted mean pool"), 0f, 1e-6f, $"weighted mean pool B={batch} T={tokens}");
    }

    /// <summary>Size patterns for attention: none, random 1..4, with zeros (the whole first key tile too), all zero.</summary>
    public enum SizeMode { None, Random, WithZeros, AllZero }

    /// <summary>Sizes of <paramref name="rows"/> tokens (images of <paramref name="tokens"/>) in a pattern (None gives all zeros: pass no sizes then).</summary>
    public static float[] AttentionSizes(SizeMode mode, int rows, int tokens)
    {
        var random = new Random(16);
        return Enumerable.Range(0, rows).Select(i => mode switch
        {
            SizeMode.Random => random.Next(1, 5),
            SizeMode.WithZeros => i % tokens < 40 || i % 7 == 3 ? 0f : random.Next(1, 5),
            _ => 0f,
        }).ToArray();
    }

    [Theory]
    [InlineData(1, 1, 3, 64, SizeMode.Random, true)]
    [InlineData(1, 2, 2, 64, SizeMode.None, true)]
    [InlineData(3, 197, 3, 64, SizeMode.Random, true)]
    [InlineData(1, 198, 2, 64, SizeMode.WithZeros, true)]
    [InlineData(1, 577, 2, 64, SizeMode.Random, false)]
    [InlineData(3, 1025, 2, 64, SizeMode.WithZeros, true)]
    [InlineData(1, 197, 2, 32, SizeMode.Random, true)]
    [InlineData(1, 197, 2, 80, SizeMode.Random, true)]
    [InlineData(1, 65, 2, 96, SizeMode.WithZeros, false)]
    [InlineData(2, 197, 2, 128, SizeMode.Random, true)]
    [InlineData(1, 50, 2, 64, SizeMode.AllZero, true)]
    public void AttentionMatchesCpu(int batch, int tokens, int heads, int headDim, SizeMode sizeMode, bool classAttention)
    {
        using var pair = BackendPair.Create();
        int c = heads * headDim, rows = batch * tokens;
        var qkv = pair.Floats(Gpu.Random(rows * 3 * c, seed: tokens + headDim, scale: 1.5f));
        var size = sizeMode == SizeMode.None ? default : pair.Floats(AttentionSizes(sizeMode, rows, tokens));
        var output = pair.FloatOutput(rows * c);
        var keyMean = pair.FloatOutput(rows * headDim);
        var cls = classAttention ? pair.FloatOutput(rows) : default;

        pair.Cpu.Attention(qkv.Cpu, size.Cpu, batch, tokens, heads, headDim, output.Cpu, keyMean.Cpu, cls.Cpu);
        pair.Gpu.Attention(qkv.Gpu, size.Gpu, batch, tokens, heads, headDim, output.Gpu, keyMean.Gpu, cls.Gpu);

        var what = $"attention B={batch} T={tokens} H={heads} D={headDim} {sizeMode}";
        Gpu.AssertClose(pair.ReadCpu(output.Cpu, rows * c), pair.ReadGpu(output.Gpu, rows * c, what), 1e-4f, 1e-4f, what);
        // Heads summed in the same order and divided: bit-identical.
        Assert.Equal(pair.ReadCpu(keyMean.Cpu, rows * headDim), pair.ReadGpu(keyMean.Gpu, rows * headDim, what + " key mean"));
        if (classAttention)
            Gpu.AssertClose(pair.ReadCpu(cls.Cpu, rows), pair.ReadGpu(cls.Gpu, rows, what + " class attention"), 1e-6f, 1e-4f, what + " class attention");
    }

    [Fact]
    public void UnsupportedHeadDimIsRefusedByName()
    {
        using var pair = BackendPair.Create();
        var qkv = pair.Floats(new float[3 * 2 * 48]);
        var output = pair.FloatOutput(2 * 48);
        var keyMean = pair.FloatOutput(48);
        var error = Assert.Throws<NotSupportedException>(() => pair.Gpu.Attention(qkv.Gpu, null, 1, 1, 2, 48, output.Gpu, keyMean.Gpu, null));
        Assert.Contains("48", error.Message);
    }
}
