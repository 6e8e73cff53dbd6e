namespace ToMe.Tests.Cuda;

/// <summary>The CUDA merging ops (matching, top-r sort, merge) against the CPU: unique values where order matters, ties where tie-breaking does.</summary>
public class CudaMergingOpTests
{
    [Theory]
    [InlineData(1, 1, 64, 1)]
    [InlineData(1, 2, 64, 1)]
    [InlineData(3, 3, 64, 0)]
    [InlineData(3, 197, 64, 1)]
    [InlineData(1, 198, 64, 2)]
    [InlineData(2, 577, 64, 1)]
    [InlineData(3, 1025, 64, 0)]
    [InlineData(1, 197, 80, 1)]
    [InlineData(1, 33, 191, 2)]
    [InlineData(2, 261, 64, 5)]   // class token + 4 registers
    [InlineData(1, 260, 64, 4)]   // 4 registers, no class token
    public void BipartiteMatchMatchesCpu(int batch, int tokens, int dim, int prefixTokens)
    {
        var metric = Gpu.Random(batch * tokens * dim, seed: tokens * 7 + dim);
        var (expectedBest, expectedIndex, best, index) = Match(metric, batch, tokens, dim, prefixTokens);
        string what = $"match B={batch} T={tokens} D={dim} prefix={prefixTokens}";
        Gpu.AssertClose(expectedBest, best, 1e-5f, 1e-5f, what + " best");
        // Random metrics have no exact ties, but two candidates may lie within rounding of each other: then either is right,
        // as long as the chosen one scores the best value (on the CPU's normalization).
        int ta = (tokens + 1) / 2;
        for (int i = 0; i < index.Length; i++)
        {
            if (index[i] == expectedIndex[i])
                continue;
            int b = i / ta, a = i % ta;
            float score = Cosine(metric, dim, b * tokens + 2 * a, b * tokens + 2 * index[i] + 1);
            Assert.True(MathF.Abs(score - expectedBest[i]) <= 1e-5f, $"{what}: row {i} chose B {index[i]} (score {score}), the CPU B {expectedIndex[i]} ({expectedBest[i]})");
        }
    }

    [Theory]
    [InlineData(197, false)]
    [InlineData(198, true)]
    public void BipartiteMatchBreaksTiesByLowestIndexAndZeroNorms(int tokens, bool distillToken)
    {
        const int batch = 2, dim = 64;
        var metric = Gpu.Random(batch * tokens * dim, seed: 17);
        int tb = tokens / 2;
        for (int b = 0; b < batch; b++)
        {
            var image = metric.AsSpan(b * tokens * dim, tokens * dim);
            // Triples of identical B tokens: equal scores, bit for bit, in any implementation.
            for (int j = 0; j + 2 < tb; j += 3)
            {
                image.Slice((2 * j + 1) * dim, dim).CopyTo(image.Slice((2 * j + 3) * dim, dim));
                image.Slice((2 * j + 1) * dim, dim).CopyTo(image.Slice((2 * j + 5) * dim, dim));
            }
            image.Slice(10 * dim, dim).Clear();   // A 5: zero norm, every score 0, lowest candidate wins
            image.Slice(21 * dim, dim).Clear();   // B 10: zero norm
            image.Slice(7 * dim, dim).CopyTo(image.Slice(40 * dim, dim)); // A 20 equals B 3 (and its twins)
        }
        var (expectedBest, expectedIndex, best, index) = Match(metric, batch, tokens, dim, distillToken ? 2 : 1);
        Gpu.AssertClose(expectedBest, best, 1e-5f, 1e-5f, "tied match best");
        Assert.Equal(expectedIndex, index);
        Assert.Equal(distillToken ? 1 : 0, index[5]);
    }

    private static (float[] ExpectedBest, int[] ExpectedIndex, float[] Best, int[] Index) Match(
        float[] values, int batch, int tokens, int dim, int prefixTokens)
    {
        using var pair = BackendPair.Create();
        int ta = (tokens + 1) / 2;
        var metric = pair.Floats(values);
        var best = pair.FloatOutput(batch * ta);
        var index = pair.IntOutput(batch * ta);
        pair.Cpu.BipartiteMatch(metric.Cpu, batch, tokens, dim, prefixTokens, best.Cpu, index.Cpu);
        pair.Gpu.BipartiteMatch(metric.Gpu, batch, tokens, dim, prefixTokens, best.Gpu, index.Gpu);
        return (pair.ReadCpu(best.Cpu, batch * ta), pair.ReadCpuInts(index.Cpu, batch * ta),
            pair.ReadGpu(best.Gpu, batch * ta, "best"), pair.ReadGpuInts(index.Gpu, batch * ta, "best index"));
    }

    private static float Cosine(float[] metric, int dim, int tokenA, int tokenB)
    {
        double dot = 0, na = 0, nb = 0;
        for (int d = 0; d < dim; d++)
        {
            double a = metric[tokenA * dim + d], b = metric[tokenB * dim + d];
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        return na == 0 || nb == 0 ? 0f : (float)(dot / Math.Sqrt(na * nb));
    }

    [Theory]
    [InlineData(1, 1, 0, true)]
    [InlineData(1, 2, 1, true)]
    [InlineData(3, 99, 13, true)]
    [InlineData(2, 129, 64, false)]
    [InlineData(1, 257, 128, true)]
    [InlineData(3, 513, 100, true)]
    [InlineData(1, 600, 299, false)]
    [InlineData(1, 1024, 16, true)]
    [InlineData(2, 4096, 2000, true)]
    public void SelectTopRMatchesCpuOnUniqueValues(int batch, int setA, int r, bool keepUnmergedInOrder)
    {
        var random = new Random(setA);
        var values = new float[batch * setA];
        for (int b = 0; b < batch; b++)
        {
            var permutation = Enumerable.Range(0, setA).OrderBy(_ => random.Next()).ToArray();
            for (int i = 0; i < setA; i++)
                values[b * setA + i] = permutation[i] * 0.001f - 0.5f;
            if (keepUnmergedInOrder)
                values[b * setA] = float.NegativeInfinity; // the protected class token
        }
        AssertTopR(values, batch, setA, r, keepUnmergedInOrder);
    }

    [Theory]
    [InlineData(3, 197, 50, true)]
    [InlineData(2, 300, 7, false)]
    [InlineData(1, 33, 33, true)]
    public void SelectTopRBreaksTiesByLowerIndexAndPutsNaNLast(int batch, int setA, int r, bool keepUnmergedInOrder)
    {
        var random = new Random(18);
        float[] palette = [0.25f, 0.5f, float.NegativeInfinity, float.NaN, 0.5f, -0.75f];
        var values = Enumerable.Range(0, batch * setA).Select(_ => palette[random.Next(palette.Length)]).ToArray();
        AssertTopR(values, batch, setA, r, keepUnmergedInOrder);
    }

    private static void AssertTopR(float[] values, int batch, int setA, int r, bool keepUnmergedInOrder)
    {
        using var pair = BackendPair.Create();
        var best = pair.Floats(values);
        var order = pair.IntOutput(batch * setA);
        pair.Cpu.SelectTopR(best.Cpu, batch, setA, r, keepUnmergedInOrder, order.Cpu);
        pair.Gpu.SelectTopR(best.Gpu, batch, setA, r, keepUnmergedInOrder, order.Gpu);
        Assert.Equal(pair.ReadCpuInts(order.Cpu, batch * setA), pair.ReadGpuInts(order.Gpu, batch * setA, "order"));
    }

    [Theory]
    [InlineData(1, 2, 8, 1, false, false)]
    [InlineData(3, 3, 16, 1, false, false)]
    [InlineData(3, 197, 64, 13, false, false)]
    [InlineData(1, 198, 64, 98, true, false)]
    [InlineData(2, 577, 48, 200, false, true)]
    [InlineData(3, 1025, 32, 400, true, false)]
    [InlineData(1, 197, 96, 98, false, true)]
    [InlineData(1, 1025, 40, 0, false, false)]
    public void MergeMatchesCpu(int batch, int tokens, int channels, int r, bool distillToken, bool allIntoOne)
    {
        using var pair = BackendPair.Create();
        int ta = (tokens + 1) / 2, tb = tokens / 2, newTokens = tokens - r, originalTokens = tokens + 5;
        var random = new Random(tokens * 31 + r);
        var x = pair.Floats(Gpu.Random(batch * tokens * channels, seed: 19, scale: 3f));
        var size = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => (float)random.Next(1, 6)).ToArray());
        var groups = pair.Ints(Enumerable.Range(0, batch * originalTokens).Select(_ => random.Next(tokens)).ToArray());
        // Distinct scores with the class token last, ranked by the CPU; both backends merge from the same order.
        var best = Enumerable.Range(0, batch * ta).Select(i => i % ta == 0 ? float.NegativeInfinity : random.NextSingle()).ToArray();
        var bestBuffer = pair.Floats(best);
        var cpuOrder = pair.IntOutput(batch * ta);
        pair.Cpu.SelectTopR(bestBuffer.Cpu, batch, ta, r, keepUnmergedInOrder: true, cpuOrder.Cpu);
        var order = pair.Ints(pair.ReadCpuInts(cpuOrder.Cpu, batch * ta));
        int firstDestination = distillToken ? 1 : 0;
        int sink = tb > firstDestination ? random.Next(firstDestination, tb) : 0;
        var bestIndex = pair.Ints(Enumerable.Range(0, batch * ta)
            .Select(_ => allIntoOne ? sink : tb > firstDestination ? random.Next(firstDestination, tb) : 0).ToArray());
        var xOut = pair.FloatOutput(batch * newTokens * channels);
        var sizeOut = pair.FloatOutput(batch * newTokens);
        var groupsOut = pair.IntOutput(batch * originalTokens);

        pair.Cpu.Merge(x.Cpu, size.Cpu, groups.Cpu, order.Cpu, bestIndex.Cpu, null, batch, tokens, channels, originalTokens, r, distillToken ? 2 : 0,
            xOut.Cpu, sizeOut.Cpu, groupsOut.Cpu);
        pair.Gpu.Merge(x.Gpu, size.Gpu, groups.Gpu, order.Gpu, bestIndex.Gpu, null, batch, tokens, channels, originalTokens, r, distillToken ? 2 : 0,
            xOut.Gpu, sizeOut.Gpu, groupsOut.Gpu);

        string what = $"merge B={batch} T={tokens} C={channels} r={r} dist={distillToken} allIntoOne={allIntoOne}";
        // The same operations in the same order, unfused: expected bit-identical; 1e-6 relative allowed.
        Gpu.AssertClose(pair.ReadCpu(xOut.Cpu, batch * newTokens * channels), pair.ReadGpu(xOut.Gpu, batch * newTokens * channels, what), 0f, 1e-6f, what);
        Assert.Equal(pair.ReadCpu(sizeOut.Cpu, batch * newTokens), pair.ReadGpu(sizeOut.Gpu, batch * newTokens, what + " sizes"));
        Assert.Equal(pair.ReadCpuInts(groupsOut.Cpu, batch * originalTokens), pair.ReadGpuInts(groupsOut.Gpu, batch * originalTokens, what + " groups"));
    }
}
