using ToMe.Merging;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The CUDA ops of the merge variants (ToMeCIS's scores and weighted merge, kth/random assignment, ToMato's grid components,
/// the assigned merge) against their CPU twins on seeded inputs: integer outputs exactly, merged values to 1e-6 relative.
/// </summary>
public class CudaVariantOpTests
{
    [Theory]
    [InlineData(1, 1, 3, 64)]
    [InlineData(3, 2, 4, 32)]
    [InlineData(3, 197, 3, 64)]
    [InlineData(1, 198, 12, 64)]
    [InlineData(2, 577, 6, 80)]
    [InlineData(1, 5, 1, 17)]
    [InlineData(3, 33, 2, 129)]
    public void ClassImportanceMatchesCpu(int batch, int tokens, int heads, int headDim)
    {
        using var pair = BackendPair.Create();
        int c = heads * headDim, rows = batch * tokens;
        var values = Gpu.Random(rows * 3 * c, seed: tokens * 5 + heads, scale: 2f);
        // Row 0 of every image: v all zero, score exactly 0.
        for (int b = 0; b < batch; b++)
            values.AsSpan((b * tokens) * 3 * c + 2 * c, c).Clear();
        var random = new Random(tokens);
        var attention = Enumerable.Range(0, rows).Select(_ => random.NextSingle() / tokens).ToArray();
        var qkv = pair.Floats(values);
        var classAttention = pair.Floats(attention);
        var score = pair.FloatOutput(rows);

        pair.Cpu.ClassImportance(qkv.Cpu, classAttention.Cpu, batch, tokens, heads, headDim, score.Cpu);
        pair.Gpu.ClassImportance(qkv.Gpu, classAttention.Gpu, batch, tokens, heads, headDim, score.Gpu);

        string what = $"class importance B={batch} T={tokens} H={heads} D={headDim}";
        var expected = pair.ReadCpu(score.Cpu, rows);
        var actual = pair.ReadGpu(score.Gpu, rows, what);
        // Same head sum and mean; the sums of squares are both fixed-order but differently vectorized.
        Gpu.AssertClose(expected, actual, 0f, 1e-5f, what);
        for (int b = 0; b < batch; b++)
            Assert.Equal(0f, actual[b * tokens]);
    }

    public enum Scores { Positive, SomeZero, AllZero }

    [Theory]
    [InlineData(1, 2, 8, 1, false, Scores.Positive)]
    [InlineData(3, 3, 16, 1, false, Scores.SomeZero)]
    [InlineData(3, 197, 64, 13, false, Scores.Positive)]
    [InlineData(3, 197, 64, 60, false, Scores.SomeZero)]
    [InlineData(1, 198, 64, 98, true, Scores.SomeZero)]
    [InlineData(2, 577, 48, 200, false, Scores.Positive)]
    [InlineData(1, 577, 40, 100, false, Scores.AllZero)]
    [InlineData(1, 1, 24, 0, false, Scores.Positive)]
    public void WeightedMergeMatchesCpu(int batch, int tokens, int channels, int r, bool distillToken, Scores scores)
    {
        using var pair = BackendPair.Create();
        int ta = (tokens + 1) / 2, tb = tokens / 2, newTokens = tokens - r, originalTokens = tokens + 3;
        var random = new Random(tokens * 17 + r);
        var x = pair.Floats(Gpu.Random(batch * tokens * channels, seed: 23, scale: 3f));
        var size = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => (float)random.Next(1, 6)).ToArray());
        var groups = pair.Ints(Enumerable.Range(0, batch * originalTokens).Select(_ => random.Next(tokens)).ToArray());
        // Class-importance-like scores: small positives; SomeZero zeroes a third of them, so single tokens and some
        // whole groups sum to 0 and fall back to the size weights.
        var weight = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => scores switch
        {
            Scores.AllZero => 0f,
            Scores.SomeZero when random.Next(3) == 0 => 0f,
            _ => random.NextSingle() * 0.05f,
        }).ToArray());
        var best = Enumerable.Range(0, batch * ta).Select(i => i % ta == 0 ? float.NegativeInfinity : random.NextSingle()).ToArray();
        var bestBuffer = pair.Floats(best);
        var cpuOrder = pair.IntOutput(batch * ta);
        pair.Cpu.SelectTopR(bestBuffer.Cpu, batch, ta, r, keepUnmergedInOrder: true, cpuOrder.Cpu);
        var order = pair.Ints(pair.ReadCpuInts(cpuOrder.Cpu, batch * ta));
        int firstDestination = distillToken ? 1 : 0;
        // Few destinations, so that groups of several sources are common.
        var bestIndex = pair.Ints(Enumerable.Range(0, batch * ta)
            .Select(_ => tb > firstDestination ? random.Next(firstDestination, Math.Min(tb, firstDestination + 7)) : 0).ToArray());
        var xOut = pair.FloatOutput(batch * newTokens * channels);
        var sizeOut = pair.FloatOutput(batch * newTokens);
        var groupsOut = pair.IntOutput(batch * originalTokens);

        pair.Cpu.Merge(x.Cpu, size.Cpu, groups.Cpu, order.Cpu, bestIndex.Cpu, weight.Cpu, batch, tokens, channels, originalTokens, r, distillToken ? 2 : 0,
            xOut.Cpu, sizeOut.Cpu, groupsOut.Cpu);
        pair.Gpu.Merge(x.Gpu, size.Gpu, groups.Gpu, order.Gpu, bestIndex.Gpu, weight.Gpu, batch, tokens, channels, originalTokens, r, distillToken ? 2 : 0,
            xOut.Gpu, sizeOut.Gpu, groupsOut.Gpu);

        string what = $"weighted merge B={batch} T={tokens} C={channels} r={r} dist={distillToken} scores={scores}";
        Gpu.AssertClose(pair.ReadCpu(xOut.Cpu, batch * newTokens * channels), pair.ReadGpu(xOut.Gpu, batch * newTokens * channels, what), 0f, 1e-6f, what);
        Assert.Equal(pair.ReadCpu(sizeOut.Cpu, batch * newTokens), pair.ReadGpu(sizeOut.Gpu, batch * newTokens, what + " sizes"));
        Assert.Equal(pair.ReadCpuInts(groupsOut.Cpu, batch * originalTokens), pair.ReadGpuInts(groupsOut.Gpu, batch * originalTokens, what + " groups"));
    }

    [Theory]
    [InlineData(1, 1, 64, 2, 0)]
    [InlineData(3, 2, 64, 2, 0)]
    [InlineData(3, 197, 64, 2, 0)]
    [InlineData(1, 198, 64, 3, 0)]
    [InlineData(2, 577, 64, 4, 0)]
    [InlineData(1, 197, 80, 0, 8)]
    [InlineData(3, 198, 64, 0, 60)]
    [InlineData(2, 577, 48, 0, 250)]
    [InlineData(1, 2, 64, 0, 0)]
    [InlineData(3, 33, 191, 5, 0)]
    public void AssignToMostSimilarMatchesCpu(int batch, int tokens, int dim, int k, int r)
    {
        // k ≥ 2: kth roles (no protection); otherwise random roles with r sources, one prefix token protected.
        int prefix = k >= 2 ? 0 : 1;
        var roles = Roles(batch, tokens, k, prefix, r, seed: tokens + r);
        var metric = Gpu.Random(batch * tokens * dim, seed: tokens * 3 + dim);
        var (expected, actual) = Assign(metric, roles, batch, tokens, dim, protectedOutputs: prefix);
        string what = $"assign B={batch} T={tokens} D={dim} k={k} r={r}";
        // Random metrics have no exact ties, but two kept tokens may score within rounding of each other: then either
        // is right, as long as the GPU's choice is a candidate that scores the CPU's best.
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i] == actual[i])
                continue;
            int b = i / tokens, t = i % tokens;
            Assert.True(roles[i] == TokenRoles.Source && actual[i] >= prefix && expected[i] >= 0,
                $"{what}: token {t} of image {b} (role {roles[i]}) went to {actual[i]}, the CPU's to {expected[i]}");
            int chosen = KeptToken(roles, b, tokens, actual[i]), cpuChosen = KeptToken(roles, b, tokens, expected[i]);
            double score = Cosine(metric, dim, b * tokens + t, b * tokens + chosen), cpuScore = Cosine(metric, dim, b * tokens + t, b * tokens + cpuChosen);
            Assert.True(Math.Abs(score - cpuScore) <= 1e-5,
                $"{what}: token {t} of image {b} went to {actual[i]} (cosine {score}), the CPU's to {expected[i]} ({cpuScore})");
        }
    }

    [Theory]
    [InlineData(197, 3, 0)]
    [InlineData(198, 0, 40)]
    [InlineData(577, 2, 0)]
    public void AssignBreaksTiesByLowestTokenAndHandlesZeroNorms(int tokens, int k, int r)
    {
        const int batch = 3, dim = 64;
        int prefix = k >= 2 ? 0 : 1;
        var roles = Roles(batch, tokens, k, prefix, r, seed: 11);
        var metric = Gpu.Random(batch * tokens * dim, seed: 12);
        var random = new Random(13);
        for (int b = 0; b < batch; b++)
        {
            var image = metric.AsSpan(b * tokens * dim, tokens * dim);
            var rb = roles.AsSpan(b * tokens, tokens).ToArray();
            var kept = Enumerable.Range(0, tokens).Where(t => rb[t] >= prefix).ToArray();
            // Triples of identical kept tokens: equal scores, bit for bit, in any implementation.
            for (int i = 0; i + 2 < kept.Length; i += 3)
            {
                image.Slice(kept[i] * dim, dim).CopyTo(image.Slice(kept[i + 1] * dim, dim));
                image.Slice(kept[i] * dim, dim).CopyTo(image.Slice(kept[i + 2] * dim, dim));
            }
            var sources = Enumerable.Range(0, tokens).Where(t => rb[t] == TokenRoles.Source).ToArray();
            for (int s = 0; s < sources.Length; s++)
            {
                var row = image.Slice(sources[s] * dim, dim);
                if (s % 5 == 0)
                {
                    row.Clear(); // zero norm: every score 0, the first candidate wins
                    continue;
                }
                // Twice a kept token (normalizes to the same row exactly): its triple ties at the top.
                var twin = image.Slice(kept[random.Next(kept.Length)] * dim, dim);
                for (int d = 0; d < dim; d++)
                    row[d] = 2 * twin[d];
            }
            if (kept.Length > 4)
                image.Slice(kept[4] * dim, dim).Clear(); // a zero-norm candidate: similarity 0 to everything
        }
        var (expected, actual) = Assign(metric, roles, batch, tokens, dim, protectedOutputs: prefix);
        Assert.Equal(expected, actual);
    }

    private static (int[] Expected, int[] Actual) Assign(float[] metricValues, int[] roleValues, int batch, int tokens, int dim, int protectedOutputs)
    {
        using var pair = BackendPair.Create();
        var metric = pair.Floats(metricValues);
        var role = pair.Ints(roleValues);
        var dest = pair.IntOutput(batch * tokens);
        pair.Cpu.AssignToMostSimilar(metric.Cpu, role.Cpu, batch, tokens, dim, protectedOutputs, dest.Cpu);
        pair.Gpu.AssignToMostSimilar(metric.Gpu, role.Gpu, batch, tokens, dim, protectedOutputs, dest.Gpu);
        return (pair.ReadCpuInts(dest.Cpu, batch * tokens), pair.ReadGpuInts(dest.Gpu, batch * tokens, "dest"));
    }

    /// <summary>Per-image roles as the forward pass computes them: kth (k ≥ 2) or random with r sources.</summary>
    private static int[] Roles(int batch, int tokens, int k, int prefix, int r, int seed)
    {
        var roles = new int[batch * tokens];
        for (int b = 0; b < batch; b++)
        {
            if (k >= 2)
                TokenRoles.Kth(tokens, k, roles.AsSpan(b * tokens, tokens));
            else
                TokenRoles.Random((ulong)(seed * 1000 + b), layer: 1, tokens, prefix, r, roles.AsSpan(b * tokens, tokens));
        }
        return roles;
    }

    private static int KeptToken(int[] roles, int b, int tokens, int role) => Array.IndexOf(roles, role, b * tokens, tokens) - b * tokens;

    [Theory]
    [InlineData(1, 1, 14, 14, 64, Threshold.Some)]
    [InlineData(3, 1, 14, 14, 64, Threshold.Nothing)]
    [InlineData(3, 1, 14, 14, 64, Threshold.Everything)]
    [InlineData(3, 1, 16, 16, 64, Threshold.Some)]
    [InlineData(1, 2, 14, 14, 64, Threshold.Sparse)]
    [InlineData(2, 1, 16, 16, 32, Threshold.Dense)]
    [InlineData(1, 1, 1, 1, 64, Threshold.Some)]
    [InlineData(3, 0, 1, 1, 64, Threshold.Everything)]
    [InlineData(3, 2, 7, 5, 64, Threshold.Some)]
    [InlineData(1, 1, 5, 7, 48, Threshold.Dense)]
    [InlineData(3, 2, 7, 5, 64, Threshold.Everything)]
    [InlineData(1, 1, 64, 64, 64, Threshold.Some)]
    [InlineData(2, 1, 64, 64, 64, Threshold.Everything)]
    [InlineData(1, 1, 1, 4096, 16, Threshold.Everything)]
    [InlineData(1, 0, 4096, 1, 16, Threshold.Dense)]
    [InlineData(1, 1, 32, 128, 16, Threshold.Some)]
    public void GridComponentsMatchesCpu(int batch, int prefix, int gridHeight, int gridWidth, int dim, Threshold kind)
    {
        int tokens = prefix + gridHeight * gridWidth;
        var metric = Gpu.Random(batch * tokens * dim, seed: tokens + dim);
        // A few zero-norm patches: similarity 0 to every neighbour.
        var random = new Random(tokens);
        for (int b = 0; b < batch; b++)
            for (int z = 0; z < Math.Min(3, gridHeight * gridWidth / 10); z++)
                metric.AsSpan((b * tokens + prefix + random.Next(gridHeight * gridWidth)) * dim, dim).Clear();
        float threshold = PickThreshold(metric, batch, tokens, dim, prefix, gridHeight, gridWidth, kind);

        using var pair = BackendPair.Create();
        var m = pair.Floats(metric);
        var dest = pair.IntOutput(batch * tokens);
        var counts = pair.IntOutput(batch);
        pair.Cpu.GridComponents(m.Cpu, batch, tokens, dim, prefix, gridHeight, gridWidth, threshold, dest.Cpu, counts.Cpu);
        pair.Gpu.GridComponents(m.Gpu, batch, tokens, dim, prefix, gridHeight, gridWidth, threshold, dest.Gpu, counts.Gpu);

        string what = $"grid components B={batch} p={prefix} {gridHeight}×{gridWidth} D={dim} τ={threshold} ({kind})";
        var expectedCounts = pair.ReadCpuInts(counts.Cpu, batch);
        Assert.Equal(expectedCounts, pair.ReadGpuInts(counts.Gpu, batch, what + " counts"));
        Assert.Equal(pair.ReadCpuInts(dest.Cpu, batch * tokens), pair.ReadGpuInts(dest.Gpu, batch * tokens, what + " dest"));
        int patches = gridHeight * gridWidth;
        switch (kind)
        {
            case Threshold.Nothing:
                Assert.All(expectedCounts, n => Assert.Equal(prefix + patches, n));
                break;
            case Threshold.Everything:
                Assert.All(expectedCounts, n => Assert.Equal(prefix + 1, n));
                break;
            default:
                Assert.All(expectedCounts, n => Assert.InRange(n, prefix + 1, prefix + patches));
                break;
        }
    }

    /// <summary>How much a threshold joins: nothing, everything, or about a quarter, half or three quarters of the edges.</summary>
    public enum Threshold { Nothing, Sparse, Some, Dense, Everything }

    /// <summary>
    /// Nothing: 1.5 (cosines are ≤ 1 + rounding); everything: −1.5. Otherwise a threshold between two neighbouring edge
    /// cosines (in double) at the wanted quantile that lie at least 2e-4 apart, so that rounding differences between
    /// the backends' dot products cannot move any edge across it.
    /// </summary>
    private static float PickThreshold(float[] metric, int batch, int tokens, int dim, int prefix, int gridHeight, int gridWidth, Threshold kind)
    {
        if (kind == Threshold.Nothing)
            return 1.5f;
        if (kind == Threshold.Everything)
            return -1.5f;
        var edges = new List<double>();
        for (int b = 0; b < batch; b++)
            for (int y = 0; y < gridHeight; y++)
                for (int x = 0; x < gridWidth; x++)
                {
                    int i = b * tokens + prefix + y * gridWidth + x;
                    if (x + 1 < gridWidth)
                        edges.Add(Cosine(metric, dim, i, i + 1));
                    if (y + 1 < gridHeight)
                        edges.Add(Cosine(metric, dim, i, i + gridWidth));
                }
        if (edges.Count == 0)
            return 0.25f;
        edges.Sort();
        double quantile = kind switch { Threshold.Sparse => 0.75, Threshold.Dense => 0.25, _ => 0.5 };
        int start = Math.Min((int)(quantile * edges.Count), edges.Count - 1);
        for (int step = 0; step < edges.Count; step++)
        {
            foreach (int i in new[] { start + step, start - step })
            {
                if (i >= 0 && i + 1 < edges.Count && edges[i + 1] - edges[i] > 4e-4)
                    return (float)((edges[i] + edges[i + 1]) / 2);
            }
        }
        return (float)(edges[^1] + 0.5);
    }

    [Theory]
    [InlineData(1, 1, 8, 1, 1)]
    [InlineData(3, 2, 16, 1, 2)]
    [InlineData(3, 197, 64, 98, 98)]
    [InlineData(1, 198, 64, 66, 80)]
    [InlineData(2, 577, 48, 150, 200)]
    [InlineData(3, 197, 100, 1, 1)]
    [InlineData(1, 577, 40, 577, 577)]
    [InlineData(3, 577, 64, 20, 500)]
    public void MergeAssignedMatchesCpu(int batch, int tokens, int channels, int usedSlots, int newTokens)
    {
        using var pair = BackendPair.Create();
        int originalTokens = tokens + 7;
        var random = new Random(tokens * 13 + usedSlots);
        var x = pair.Floats(Gpu.Random(batch * tokens * channels, seed: 29, scale: 3f));
        // Sizes 0..5: tokens of size 0 (ToMato's padding) contribute nothing, and a slot of only those stays unnormalized.
        var size = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => (float)random.Next(0, 6)).ToArray());
        // Each token to one of the first usedSlots slots or dropped (−1); slots ≥ usedSlots receive nothing (padding).
        var destValues = Enumerable.Range(0, batch * tokens).Select(_ => random.Next(8) == 0 ? -1 : random.Next(usedSlots)).ToArray();
        var dest = pair.Ints(destValues);
        var groups = pair.Ints(Enumerable.Range(0, batch * originalTokens).Select(_ => random.Next(10) == 0 ? -1 : random.Next(tokens)).ToArray());
        var xOut = pair.FloatOutput(batch * newTokens * channels);
        var sizeOut = pair.FloatOutput(batch * newTokens);
        var groupsOut = pair.IntOutput(batch * originalTokens);

        pair.Cpu.MergeAssigned(x.Cpu, size.Cpu, groups.Cpu, dest.Cpu, batch, tokens, channels, originalTokens, newTokens, xOut.Cpu, sizeOut.Cpu, groupsOut.Cpu);
        pair.Gpu.MergeAssigned(x.Gpu, size.Gpu, groups.Gpu, dest.Gpu, batch, tokens, channels, originalTokens, newTokens, xOut.Gpu, sizeOut.Gpu, groupsOut.Gpu);

        string what = $"merge assigned B={batch} T={tokens} C={channels} used={usedSlots} T'={newTokens}";
        var values = pair.ReadGpu(xOut.Gpu, batch * newTokens * channels, what);
        Gpu.AssertClose(pair.ReadCpu(xOut.Cpu, batch * newTokens * channels), values, 0f, 1e-6f, what);
        var sizes = pair.ReadGpu(sizeOut.Gpu, batch * newTokens, what + " sizes");
        Assert.Equal(pair.ReadCpu(sizeOut.Cpu, batch * newTokens), sizes);
        Assert.Equal(pair.ReadCpuInts(groupsOut.Cpu, batch * originalTokens), pair.ReadGpuInts(groupsOut.Gpu, batch * originalTokens, what + " groups"));
        // Padding slots: zeros, size 0.
        for (int b = 0; b < batch; b++)
            for (int j = usedSlots; j < newTokens; j++)
            {
                Assert.Equal(0f, sizes[b * newTokens + j]);
                Assert.All(values.AsSpan((b * newTokens + j) * channels, channels).ToArray(), v => Assert.Equal(0f, v));
            }
    }

    [Fact]
    public void LimitsAreCheckedOnTheHost()
    {
        using var pair = BackendPair.Create();
        var metric = pair.Floats(new float[2 * 65 * 8]);
        var dest = pair.IntOutput(2 * 65);
        var counts = pair.IntOutput(2);
        Assert.Throws<ArgumentException>(() => pair.Gpu.GridComponents(metric.Gpu, 2, 65, 8, 1, 8, 7, 0.5f, dest.Gpu, counts.Gpu));
        var big = pair.Floats(new float[4097 * 2]);
        var bigDest = pair.IntOutput(4097);
        Assert.Throws<NotSupportedException>(() => pair.Gpu.GridComponents(big.Gpu, 1, 4097, 2, 0, 1, 4097, 0.5f, bigDest.Gpu, counts.Gpu));
        var role = pair.Ints(new int[2 * 65]);
        Assert.Throws<NotSupportedException>(() => pair.Gpu.AssignToMostSimilar(pair.Floats(new float[2 * 65 * 192]).Gpu, role.Gpu, 2, 65, 192, 0, dest.Gpu));
        var smallDest = pair.Ints(new int[10]);
        Assert.Throws<ArgumentException>(() => pair.Gpu.AssignToMostSimilar(metric.Gpu, role.Gpu, 2, 65, 8, 0, smallDest.Gpu));
    }

    private static double Cosine(float[] metric, int dim, int tokenA, int tokenB)
    {
        double dot = 0, na = 0, nb = 0;
        for (int d = 0; d < dim; d++)
        {
            double a = metric[tokenA * dim + d], b = metric[tokenB * dim + d];
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }
}
