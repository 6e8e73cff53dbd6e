using ToMe.Backends;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>The CPU attention (the reference of the CUDA kernel) against a float64 evaluation of its definition.</summary>
public class AttentionTests
{
    public enum SizeMode { None, Random, WithZeros, AllZero }

    [Theory]
    [InlineData(1, 1, 3, 64, SizeMode.Random)]
    [InlineData(1, 2, 2, 64, SizeMode.None)]
    [InlineData(3, 197, 3, 64, SizeMode.Random)]
    [InlineData(1, 198, 2, 64, SizeMode.WithZeros)]
    [InlineData(1, 577, 2, 64, SizeMode.Random)]
    [InlineData(1, 1025, 1, 64, SizeMode.WithZeros)]
    [InlineData(1, 197, 2, 80, SizeMode.Random)]
    [InlineData(1, 65, 2, 96, SizeMode.WithZeros)]
    [InlineData(2, 25, 2, 16, SizeMode.None)]
    [InlineData(1, 50, 2, 64, SizeMode.AllZero)]
    public void MatchesFloat64Definition(int batch, int tokens, int heads, int headDim, SizeMode sizeMode)
    {
        int c = heads * headDim, rows = batch * tokens;
        var qkv = Reference.Random(rows * 3 * c, seed: tokens + headDim, scale: 1.5f);
        var random = new Random(16);
        var sizes = Enumerable.Range(0, rows).Select(i => sizeMode switch
        {
            SizeMode.Random => random.Next(1, 5),
            SizeMode.WithZeros => i % tokens < 40 || i % 7 == 3 ? 0f : random.Next(1, 5),
            SizeMode.AllZero => 0f,
            _ => 1f,
        }).ToArray();

        var (output, keyMean, cls) = Run(new CpuBackend(2), qkv, sizeMode == SizeMode.None ? null : sizes, batch, tokens, heads, headDim);

        double scale = 1 / Math.Sqrt(headDim);
        var expectedCls = new double[rows];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < tokens; i++)
                {
                    var logits = new double[tokens];
                    for (int j = 0; j < tokens; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < headDim; e++)
                            dot += (double)Q(i, e) * K(j, e);
                        logits[j] = dot * scale + (sizeMode == SizeMode.None ? 0 : Math.Log(sizes[b * tokens + j]));
                    }
                    double max = logits.Max();
                    var p = logits.Select(l => double.IsNegativeInfinity(max) ? 0 : Math.Exp(l - max)).ToArray();
                    double sum = p.Sum();
                    for (int j = 0; j < tokens; j++)
                        p[j] = sum > 0 ? p[j] / sum : 0;
                    if (i == 0)
                        for (int j = 0; j < tokens; j++)
                            expectedCls[b * tokens + j] += p[j] / heads;
                    for (int e = 0; e < headDim; e++)
                    {
                        double value = 0, magnitude = 0;
                        for (int j = 0; j < tokens; j++)
                        {
                            value += p[j] * V(j, e);
                            magnitude += p[j] * Math.Abs(V(j, e));
                        }
                        float actual = output[(b * tokens + i) * c + h * headDim + e];
                        Assert.True(Math.Abs(actual - value) <= 1e-6 + 2e-5 * magnitude,
                            $"B={batch} T={tokens} D={headDim} {sizeMode}: out[{b},{i},{h},{e}] = {actual}, expected {value}");
                    }

                    float Q(int token, int e) => qkv[(b * tokens + token) * 3 * c + h * headDim + e];
                    float K(int token, int e) => qkv[(b * tokens + token) * 3 * c + c + h * headDim + e];
                    float V(int token, int e) => qkv[(b * tokens + token) * 3 * c + 2 * c + h * headDim + e];
                }
        for (int i = 0; i < rows; i++)
        {
            Assert.True(Math.Abs(cls[i] - expectedCls[i]) <= 1e-6 + 1e-5 * expectedCls[i], $"class attention [{i}] = {cls[i]}, expected {expectedCls[i]}");
            for (int e = 0; e < headDim; e++)
            {
                double mean = 0;
                for (int h = 0; h < heads; h++)
                    mean += qkv[i * 3 * c + c + h * headDim + e];
                Assert.True(Math.Abs(keyMean[i * headDim + e] - mean / heads) <= 1e-6, $"key mean [{i}, {e}]");
            }
        }
    }

    // The fused op against the same computation from the general routines (scaled q·kᵀ, row softmax, p·v; the key mean
    // by span ops): bit for bit, so its packing, in-place query reads and padded softmax change no result.
    [Theory]
    [InlineData(1, 1, 3, 64, SizeMode.Random, 1)]
    [InlineData(1, 2, 2, 64, SizeMode.None, 2)]
    [InlineData(3, 197, 3, 64, SizeMode.Random, 2)]
    [InlineData(2, 197, 12, 64, SizeMode.None, 1)]
    [InlineData(8, 197, 3, 32, SizeMode.Random, 2)] // whole images per thread
    [InlineData(9, 65, 2, 64, SizeMode.WithZeros, 2)]
    [InlineData(2, 577, 2, 64, SizeMode.None, 2)]
    [InlineData(5, 2, 3, 64, SizeMode.Random, 2)]
    [InlineData(1, 198, 2, 64, SizeMode.WithZeros, 2)]
    [InlineData(1, 577, 2, 64, SizeMode.Random, 2)]
    [InlineData(1, 1025, 1, 64, SizeMode.WithZeros, 1)]
    [InlineData(1, 197, 2, 80, SizeMode.Random, 2)]
    [InlineData(1, 65, 2, 96, SizeMode.WithZeros, 1)]
    [InlineData(2, 25, 2, 16, SizeMode.None, 2)]
    [InlineData(1, 50, 2, 64, SizeMode.AllZero, 2)]
    [InlineData(16, 197, 3, 64, SizeMode.Random, 2)] // six-micro-panel strips per image, 197 = 2·72 + 53
    [InlineData(16, 197, 6, 64, SizeMode.None, 2)]
    [InlineData(16, 2, 2, 32, SizeMode.WithZeros, 2)]
    [InlineData(1, 197, 6, 64, SizeMode.Random, 2)] // strips as the parallel tasks
    [InlineData(1, 197, 3, 64, SizeMode.None, 2)]
    [InlineData(1, 60, 3, 64, SizeMode.Random, 2)] // one strip per head
    [InlineData(3, 1025, 2, 32, SizeMode.Random, 2)]
    [InlineData(5, 577, 1, 64, SizeMode.WithZeros, 2)]
    [InlineData(2, 1, 3, 32, SizeMode.Random, 2)]
    [InlineData(2, 54, 3, 64, SizeMode.Random, 2)] // six rows past the last whole micro-panel: half kernels, in place
    [InlineData(3, 18, 2, 64, SizeMode.None, 2)]
    [InlineData(2, 119, 3, 64, SizeMode.WithZeros, 2)] // eleven rows past it
    [InlineData(4, 80, 2, 64, SizeMode.Random, 1)] // eight
    [InlineData(2, 145, 2, 64, SizeMode.Random, 2)] // one
    [InlineData(2, 54, 2, 80, SizeMode.Random, 2)] // six, with a 16-column value panel
    [InlineData(16, 184, 3, 64, SizeMode.Random, 2)] // ViT-Ti's second block at r = 13
    [InlineData(2, 200, 2, 64, SizeMode.Random, 2)] // eight keys in the last key panel: the row-pair kernel
    [InlineData(3, 40, 3, 96, SizeMode.None, 2)] // eight, head dim 96
    [InlineData(2, 8, 2, 80, SizeMode.Random, 2)] // only the short panel, head dim 80
    [InlineData(2, 33, 2, 32, SizeMode.WithZeros, 1)] // one key
    [InlineData(3, 9, 2, 64, SizeMode.None, 2)] // nine: the narrow kernel
    [InlineData(1, 197, 2, 40, SizeMode.Random, 2)] // head dim not a multiple of 16: the narrow kernel
    [InlineData(1, 197, 1, 16, SizeMode.Random, 2)] // one 16-deep block
    [InlineData(2, 197, 3, 64, SizeMode.Random, 3)] // thread ranges of query rows that cross an image
    [InlineData(1, 33, 2, 64, SizeMode.WithZeros, 4)] // ranges of one micro-panel or none
    [InlineData(1, 1, 3, 64, SizeMode.Random, 3)] // one token: one thread does it all
    [InlineData(1, 1, 1, 64, SizeMode.None, 4)]
    [InlineData(5, 65, 3, 80, SizeMode.Random, 3)]
    public void MatchesTheUnfusedCompositionBitForBit(int batch, int tokens, int heads, int headDim, SizeMode sizeMode, int threads)
    {
        int c = heads * headDim, rows = batch * tokens, stride = 3 * c, t = tokens, d = headDim;
        var qkv = Reference.Random(rows * stride, seed: 31 + tokens, scale: 2f);
        var random = new Random(5);
        var sizes = sizeMode == SizeMode.None ? null : Enumerable.Range(0, rows).Select(i => sizeMode switch
        {
            SizeMode.WithZeros => i % 9 == 4 ? 0f : random.Next(1, 6),
            SizeMode.AllZero => 0f,
            _ => random.Next(1, 6),
        }).ToArray();
        AssertMatchesComposition(qkv, sizes, batch, tokens, heads, headDim, threads);
    }

    // Non-finite scores: a NaN query row (its strip's scores hold a NaN), an infinite key component (±∞ scores in one
    // column of every row, no NaN), a zero query row (scores all zero), and large values; with and without sizes.
    [Theory]
    [InlineData(1, 1, 3, 64, false)]
    [InlineData(2, 2, 2, 32, true)]
    [InlineData(3, 197, 3, 64, true)]
    [InlineData(16, 197, 3, 64, false)]
    [InlineData(5, 577, 2, 64, true)]
    [InlineData(1, 1025, 2, 32, true)]
    [InlineData(2, 65, 2, 64, false)]
    [InlineData(3, 54, 2, 64, true)]
    [InlineData(2, 200, 2, 64, true)]
    [InlineData(3, 33, 2, 32, false)]
    public void MatchesTheUnfusedCompositionWithNonFiniteScores(int batch, int tokens, int heads, int headDim, bool withSizes)
    {
        int c = heads * headDim, rows = batch * tokens, stride = 3 * c;
        var qkv = Reference.Random(rows * stride, seed: 7 + tokens, scale: 2f);
        var random = new Random(9);
        for (int b = 0; b < batch; b++)
        {
            int i = random.Next(tokens), j = random.Next(tokens), z = random.Next(tokens), big = random.Next(tokens);
            int h = random.Next(heads), e = random.Next(headDim);
            if (b % 2 == 0)
                qkv[(b * tokens + i) * stride + h * headDim + e] = float.NaN;
            if (b % 3 != 1)
                qkv[(b * tokens + j) * stride + c + h * headDim + e] = b % 2 == 0 ? float.PositiveInfinity : float.NegativeInfinity;
            qkv.AsSpan((b * tokens + z) * stride + h * headDim, headDim).Clear();
            qkv[(b * tokens + big) * stride + ((h + 1) % heads) * headDim + e] = 3e19f;
        }
        var sizes = withSizes ? Enumerable.Range(0, rows).Select(i => i % 11 == 3 ? 0f : random.Next(1, 6)).ToArray() : null;
        AssertMatchesComposition(qkv, sizes, batch, tokens, heads, headDim, threads: 2);
    }

    // The op against its unfused composition (MatMul, SoftmaxRows, MatMul; span ops for the means), bit for bit.
    private static void AssertMatchesComposition(float[] qkv, float[]? sizes, int batch, int tokens, int heads, int headDim,
        int threads)
    {
        int c = heads * headDim, rows = batch * tokens, stride = 3 * c, t = tokens, d = headDim;
        var (output, keyMean, cls) = Run(new CpuBackend(threads), qkv, sizes, batch, tokens, heads, headDim);

        float scale = (float)(1.0 / Math.Sqrt(d));
        var expected = new float[rows * c];
        var expectedCls = new float[rows];
        var scores = new float[t * t];
        var head = new float[t * d];
        for (int b = 0; b < batch; b++)
        {
            var bias = sizes?.AsSpan(b * t, t).ToArray().Select(s => MathF.Log(s)).ToArray();
            for (int h = 0; h < heads; h++)
            {
                int q = b * t * stride + h * d;
                CpuGemm.MatMul(qkv.AsSpan(q), stride, qkv.AsSpan(q + c), stride, true, scores, t, t, t, d, scale, false);
                RowOps.SoftmaxRows(scores, t, t, t, bias);
                CpuGemm.MatMul(scores, t, qkv.AsSpan(q + 2 * c), stride, false, head, d, t, d, t, 1f, false);
                for (int i = 0; i < t; i++)
                    head.AsSpan(i * d, d).CopyTo(expected.AsSpan((b * t + i) * c + h * d));
                if (h == 0)
                    scores.AsSpan(0, t).CopyTo(expectedCls.AsSpan(b * t));
                else
                    Simd.Add(expectedCls.AsSpan(b * t, t), scores.AsSpan(0, t), expectedCls.AsSpan(b * t, t));
            }
            Simd.Divide(expectedCls.AsSpan(b * t, t), heads, expectedCls.AsSpan(b * t, t));
        }
        var expectedMean = new float[rows * d];
        for (int i = 0; i < rows; i++)
        {
            var mean = expectedMean.AsSpan(i * d, d);
            qkv.AsSpan(i * stride + c, d).CopyTo(mean);
            for (int h = 1; h < heads; h++)
                Simd.Add(mean, qkv.AsSpan(i * stride + c + h * d, d), mean);
            Simd.Divide(mean, heads, mean);
        }
        Assert.Equal(expected, output);
        Assert.Equal(expectedMean, keyMean);
        Assert.Equal(expectedCls, cls);
    }

    [Theory]
    [InlineData(5, 197, 3, 64)]
    [InlineData(2, 577, 2, 80)]
    public void ResultDoesNotDependOnThreadsOrBatch(int batch, int tokens, int heads, int headDim)
    {
        int c = heads * headDim, rows = batch * tokens;
        var qkv = Reference.Random(rows * 3 * c, seed: 3, scale: 2f);
        var sizes = Enumerable.Range(0, rows).Select(i => 1f + i % 5).ToArray();
        var one = Run(new CpuBackend(1), qkv, sizes, batch, tokens, heads, headDim);
        var two = Run(new CpuBackend(2), qkv, sizes, batch, tokens, heads, headDim);
        Assert.Equal(one.Output, two.Output);
        Assert.Equal(one.Class, two.Class);
        // The last image alone gives the same bits as inside the batch.
        var last = Run(new CpuBackend(2), qkv[((batch - 1) * tokens * 3 * c)..], sizes[((batch - 1) * tokens)..], 1, tokens, heads, headDim);
        Assert.Equal(two.Output[((batch - 1) * tokens * c)..], last.Output);
    }

    // Outputs are allocated with a NaN tail that must survive (no write past the tensor).
    private static (float[] Output, float[] KeyMean, float[] Class) Run(CpuBackend cpu, float[] qkv, float[]? sizes,
        int batch, int tokens, int heads, int headDim)
    {
        int c = heads * headDim, rows = batch * tokens, pad = 37;
        var input = cpu.AllocateFloat(qkv.Length);
        cpu.Upload(qkv, input);
        DeviceBuffer? size = null;
        if (sizes is not null)
        {
            size = cpu.AllocateFloat(rows);
            cpu.Upload(sizes, size);
        }
        DeviceBuffer Output(int n)
        {
            var buffer = cpu.AllocateFloat(n + pad);
            cpu.Upload(Enumerable.Repeat(float.NaN, n + pad).ToArray(), buffer);
            return buffer;
        }
        var output = Output(rows * c);
        var keyMean = Output(rows * headDim);
        var cls = Output(rows);
        cpu.Attention(input, size, batch, tokens, heads, headDim, output, keyMean, cls);
        float[] Read(DeviceBuffer buffer, int n)
        {
            var all = new float[n + pad];
            cpu.Download(buffer, all);
            Assert.All(all[n..], v => Assert.True(float.IsNaN(v), "a value was written past the end of an output"));
            return all[..n];
        }
        return (Read(output, rows * c), Read(keyMean, rows * headDim), Read(cls, rows));
    }
}
