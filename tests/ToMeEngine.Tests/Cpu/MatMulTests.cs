using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

public class MatMulTests
{
    private const float Sentinel = 777.25f;

    // Attention layout: q and k are [tokens, d] slices of a qkv buffer with row stride 3·heads·d.
    [Theory]
    [InlineData("Vector512", 197, 64)]
    [InlineData("Vector512", 1, 32)]
    [InlineData("Vector512", 50, 80)]
    [InlineData("Vector512", 1025, 128)]
    [InlineData("Vector256", 197, 80)]
    [InlineData("Vector256", 13, 64)]
    [InlineData("Vector128", 45, 80)]
    [InlineData("Scalar", 31, 32)]
    [InlineData("Scalar", 9, 80)]
    public void ScoresAndWeightedValuesMatchReference(string pathName, int tokens, int d)
    {
        var path = Enum.Parse<SimdPath>(pathName);
        Assert.SkipUnless(CpuGemm.IsSupported(path), $"{path} is not accelerated here");
        int heads = 2, ld = 3 * heads * d;
        var qkv = Reference.Random(tokens * ld, tokens + d);
        int qOff = d, kOff = heads * d + d, vOff = 2 * heads * d + d; // head 1
        float scale = 1f / MathF.Sqrt(d);

        // S = (scale·Q)·Kᵀ into a [tokens, tokens + 3] buffer: the 3 spare columns per row must survive.
        int lds = tokens + 3;
        var s = new float[tokens * lds];
        s.AsSpan().Fill(Sentinel);
        CpuGemm.MatMul(qkv.AsSpan(qOff), ld, qkv.AsSpan(kOff), ld, true, s, lds, tokens, tokens, d, scale, false, path);
        var expS = new double[tokens * tokens];
        var magS = new double[tokens * tokens];
        for (int i = 0; i < tokens; i++)
        {
            for (int j = 0; j < tokens; j++)
            {
                double acc = 0, mag = 0;
                for (int p = 0; p < d; p++)
                {
                    double t = (double)(qkv[i * ld + qOff + p] * scale) * qkv[j * ld + kOff + p];
                    acc += t;
                    mag += Math.Abs(t);
                }
                expS[i * tokens + j] = acc;
                magS[i * tokens + j] = mag;
            }
        }
        var packedS = new float[tokens * tokens];
        for (int i = 0; i < tokens; i++)
        {
            s.AsSpan(i * lds, tokens).CopyTo(packedS.AsSpan(i * tokens));
            Reference.AssertUntouched(s.AsSpan(i * lds + tokens, 3), Sentinel, $"S row {i} padding");
        }
        Reference.AssertClose(packedS, expS, magS, d, $"{path} S tokens={tokens} d={d}");

        // O += P·V with P = S used as weights, accumulated onto an existing [tokens, d] output of stride d + 5.
        int ldo = d + 5;
        var o0 = Reference.Random(tokens * ldo, 3);
        var o = o0.ToArray();
        CpuGemm.MatMul(packedS, tokens, qkv.AsSpan(vOff), ld, false, o, ldo, tokens, d, tokens, 1f, true, path);
        var expO = new double[tokens * d];
        var magO = new double[tokens * d];
        for (int i = 0; i < tokens; i++)
        {
            for (int j = 0; j < d; j++)
            {
                double acc = o0[i * ldo + j], mag = Math.Abs(o0[i * ldo + j]);
                for (int p = 0; p < tokens; p++)
                {
                    double t = (double)packedS[i * tokens + p] * qkv[p * ld + vOff + j];
                    acc += t;
                    mag += Math.Abs(t);
                }
                expO[i * d + j] = acc;
                magO[i * d + j] = mag;
            }
        }
        var packedO = new float[tokens * d];
        for (int i = 0; i < tokens; i++)
        {
            o.AsSpan(i * ldo, d).CopyTo(packedO.AsSpan(i * d));
            Assert.True(o.AsSpan(i * ldo + d, 5).SequenceEqual(o0.AsSpan(i * ldo + d, 5)), $"O row {i} padding changed");
        }
        Reference.AssertClose(packedO, expO, magO, tokens, $"{path} O tokens={tokens} d={d}");
    }

    [Fact]
    public void KernelsAgreeBitForBitAndRowsAreIndependentOfM()
    {
        int m = 37, n = 45, k = 300;
        var a = Reference.Random(m * k, 21);
        var b = Reference.Random(k * n, 22);
        var reference = new float[m * n];
        CpuGemm.MatMul(a, k, b, n, false, reference, n, m, n, k, 0.3f, false, SimdPath.Scalar);
        foreach (var path in new[] { SimdPath.Vector128, SimdPath.Vector256, SimdPath.Vector512 })
        {
            if (!CpuGemm.IsSupported(path))
            {
                continue;
            }
            var c = new float[m * n];
            CpuGemm.MatMul(a, k, b, n, false, c, n, m, n, k, 0.3f, false, path);
            Assert.True(reference.AsSpan().SequenceEqual(c), $"{path} differs from the scalar kernel");
            var row = new float[n];
            CpuGemm.MatMul(a.AsSpan(20 * k), k, b, n, false, row, n, 1, n, k, 0.3f, false, path);
            Assert.True(row.AsSpan().SequenceEqual(c.AsSpan(20 * n, n)), $"{path}: row 20 alone differs");
        }
    }

    [Fact]
    public void ConcurrentCallsFromCallerThreadsMatchSequentialOnes()
    {
        // The engine runs one MatMul per (image, head) from its own parallel loop; packing buffers are per thread.
        int heads = 8, tokens = 97, d = 64, ld = 3 * heads * d;
        var qkv = Reference.Random(tokens * ld, 31);
        float[] Head(int h)
        {
            var s = new float[tokens * tokens];
            CpuGemm.MatMul(qkv.AsSpan(h * d), ld, qkv.AsSpan((heads + h) * d), ld, true, s, tokens, tokens, tokens, d, 0.125f, false);
            var o = new float[tokens * d];
            CpuGemm.MatMul(s, tokens, qkv.AsSpan((2 * heads + h) * d), ld, false, o, d, tokens, d, tokens, 1f, false);
            return o;
        }
        var sequential = Enumerable.Range(0, heads).Select(Head).ToArray();
        var concurrent = new float[heads][];
        Parallel.For(0, 4 * heads, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => concurrent[i % heads] = Head(i % heads));
        for (int h = 0; h < heads; h++)
        {
            Assert.True(sequential[h].AsSpan().SequenceEqual(concurrent[h]), $"head {h} differs when run concurrently");
        }
    }

    [Fact]
    public void EmptyInnerDimensionClearsOrKeepsC()
    {
        var c = new float[] { 1, 2, 3, 4 };
        CpuGemm.MatMul(default, 0, default, 2, false, c, 2, 2, 2, 0, 1f, true);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, c);
        CpuGemm.MatMul(default, 0, default, 2, false, c, 2, 2, 2, 0, 1f, false);
        Assert.Equal(new float[4], c);
    }

    [Fact]
    public void RejectsBadStridesAndShortBuffers()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            CpuGemm.MatMul(new float[12], 2, new float[12], 3, false, new float[16], 4, 4, 3, 3, 1f, false));
        Assert.Throws<ArgumentException>(() =>
            CpuGemm.MatMul(new float[11], 3, new float[9], 3, false, new float[12], 3, 4, 3, 3, 1f, false));
        Assert.Throws<ArgumentException>(() =>
            CpuGemm.MatMul(new float[12], 3, new float[8], 3, true, new float[12], 3, 4, 3, 3, 1f, false));
    }
}
