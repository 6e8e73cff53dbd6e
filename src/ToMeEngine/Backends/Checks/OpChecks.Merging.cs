namespace ToMe.Backends.Checks;

// ToMe's merging ops (matching, top-r sort, merge): unique values where order matters, ties where tie-breaking does.
internal static partial class OpChecks
{
    private static IEnumerable<OpCheck> MergingChecks()
    {
        foreach (var (b, t, d, p) in new[]
        {
            (1, 1, 64, 1), (1, 2, 64, 1), (3, 3, 64, 0), (3, 197, 64, 1), (1, 198, 64, 2), (2, 577, 64, 1), (3, 1025, 64, 0),
            (1, 197, 80, 1), (1, 33, 191, 2), (2, 261, 64, 5) /* class token + 4 registers */, (1, 260, 64, 4) /* 4 registers */,
        })
            yield return Check("bipartite_match", $"B={b} T={t} D={d} prefix={p}", pair => BipartiteMatch(pair, b, t, d, p));
        foreach (var (t, distilled) in new[] { (197, false), (198, true) })
            yield return Check("bipartite_match", $"B=2 T={t} D=64 ties and zero norms{(distilled ? " distilled" : "")}", pair => BipartiteMatchTies(pair, t, distilled));
        foreach (var (b, ta, r, keep) in new[] { (1, 1, 0, true), (1, 2, 1, true), (3, 99, 13, true), (2, 129, 64, false), (1, 257, 128, true), (3, 513, 100, true), (1, 600, 299, false), (1, 1024, 16, true), (2, 4096, 2000, true) })
            yield return Check("select_top_r", $"B={b} ta={ta} r={r}{(keep ? " kept in order" : "")}", pair => SelectTopRUnique(pair, b, ta, r, keep));
        foreach (var (b, ta, r, keep) in new[] { (3, 197, 50, true), (2, 300, 7, false), (1, 33, 33, true) })
            yield return Check("select_top_r", $"B={b} ta={ta} r={r} ties, NaN, -inf{(keep ? " kept in order" : "")}", pair => SelectTopRTies(pair, b, ta, r, keep));
        foreach (var (b, t, c, r, distilled, allIntoOne) in new[]
        {
            (1, 2, 8, 1, false, false), (3, 3, 16, 1, false, false), (3, 197, 64, 13, false, false), (1, 198, 64, 98, true, false),
            (2, 577, 48, 200, false, true), (3, 1025, 32, 400, true, false), (1, 197, 96, 98, false, true), (1, 1025, 40, 0, false, false),
        })
            yield return Check("merge", $"B={b} T={t} C={c} r={r}{(distilled ? " distilled" : "")}{(allIntoOne ? " all into one" : "")}",
                pair => Merge(pair, b, t, c, r, distilled, allIntoOne));
    }

    private static void BipartiteMatch(OpCheckPair pair, int batch, int tokens, int dim, int prefixTokens)
    {
        var metric = OpCheckPair.Random(batch * tokens * dim, seed: tokens * 7 + dim);
        var (expectedBest, expectedIndex, best, index) = Match(pair, metric, batch, tokens, dim, prefixTokens);
        pair.Close(expectedBest, best, 1e-5f, 1e-5f, "best");
        // Random metrics have no exact ties, but two candidates may lie within rounding of each other: then either is right,
        // as long as the chosen one scores the best value.
        int ta = (tokens + 1) / 2;
        for (int i = 0; i < index.Length; i++)
        {
            if (index[i] == expectedIndex[i])
                continue;
            int b = i / ta, a = i % ta;
            double score = index[i] < 0 || 2 * index[i] + 1 >= tokens ? double.NaN : Cosine(metric, dim, b * tokens + 2 * a, b * tokens + 2 * index[i] + 1);
            pair.Expect(Math.Abs(score - expectedBest[i]) <= 1e-5, F($"row {i} chose B {index[i]} (score {score}), the CPU B {expectedIndex[i]} ({expectedBest[i]})"));
        }
    }

    private static void BipartiteMatchTies(OpCheckPair pair, int tokens, bool distillToken)
    {
        const int batch = 2, dim = 64;
        var metric = OpCheckPair.Random(batch * tokens * dim, seed: 17);
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
        var (expectedBest, expectedIndex, best, index) = Match(pair, metric, batch, tokens, dim, distillToken ? 2 : 1);
        pair.Close(expectedBest, best, 1e-5f, 1e-5f, "best");
        pair.Identical(expectedIndex, index, "best index");
        pair.Expect(index[5] == (distillToken ? 1 : 0), $"the zero-norm A 5 chose B {index[5]}, not the lowest candidate");
    }

    private static (float[] ExpectedBest, int[] ExpectedIndex, float[] Best, int[] Index) Match(
        OpCheckPair pair, float[] values, int batch, int tokens, int dim, int prefixTokens)
    {
        int ta = (tokens + 1) / 2;
        var metric = pair.Floats(values);
        var best = pair.FloatOutput(batch * ta);
        var index = pair.IntOutput(batch * ta);
        pair.Cpu.BipartiteMatch(metric.Cpu, batch, tokens, dim, prefixTokens, best.Cpu, index.Cpu);
        pair.Device.BipartiteMatch(metric.Device, batch, tokens, dim, prefixTokens, best.Device, index.Device);
        return (pair.ReadCpu(best.Cpu, batch * ta), pair.ReadCpuInts(index.Cpu, batch * ta),
            pair.ReadDevice(best.Device, batch * ta, "best"), pair.ReadDeviceInts(index.Device, batch * ta, "best index"));
    }

    private static void SelectTopRUnique(OpCheckPair pair, int batch, int setA, int r, bool keepUnmergedInOrder)
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
        TopR(pair, values, batch, setA, r, keepUnmergedInOrder);
    }

    private static void SelectTopRTies(OpCheckPair pair, int batch, int setA, int r, bool keepUnmergedInOrder)
    {
        var random = new Random(18);
        float[] palette = [0.25f, 0.5f, float.NegativeInfinity, float.NaN, 0.5f, -0.75f];
        TopR(pair, Enumerable.Range(0, batch * setA).Select(_ => palette[random.Next(palette.Length)]).ToArray(), batch, setA, r, keepUnmergedInOrder);
    }

    private static void TopR(OpCheckPair pair, float[] values, int batch, int setA, int r, bool keepUnmergedInOrder)
    {
        var best = pair.Floats(values);
        var order = pair.IntOutput(batch * setA);
        pair.Cpu.SelectTopR(best.Cpu, batch, setA, r, keepUnmergedInOrder, order.Cpu);
        pair.Device.SelectTopR(best.Device, batch, setA, r, keepUnmergedInOrder, order.Device);
        pair.Identical(pair.ReadCpuInts(order.Cpu, batch * setA), pair.ReadDeviceInts(order.Device, batch * setA, "order"), "order");
    }

    /// <summary>
    /// The merge from one plan given to both backends: distinct scores with the class token last, ranked by the CPU, and
    /// destinations at random (or all into one). <paramref name="weights"/> makes it ToMeCIS's weighted merge.
    /// </summary>
    private static void Merge(OpCheckPair pair, int batch, int tokens, int channels, int r, bool distillToken, bool allIntoOne,
                              Func<Random, int, float>? weights = null, int seed = 31, int? destinations = null)
    {
        int ta = (tokens + 1) / 2, tb = tokens / 2, newTokens = tokens - r, originalTokens = tokens + 5;
        var random = new Random(tokens * seed + r);
        var x = pair.Floats(OpCheckPair.Random(batch * tokens * channels, seed: 19, scale: 3f));
        var size = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => (float)random.Next(1, 6)).ToArray());
        var groups = pair.Ints(Enumerable.Range(0, batch * originalTokens).Select(_ => random.Next(tokens)).ToArray());
        var weight = weights is null ? default : pair.Floats(Enumerable.Range(0, batch * tokens).Select(i => weights(random, i)).ToArray());
        var best = pair.Floats(Enumerable.Range(0, batch * ta).Select(i => i % ta == 0 ? float.NegativeInfinity : random.NextSingle()).ToArray());
        var cpuOrder = pair.IntOutput(batch * ta);
        pair.Cpu.SelectTopR(best.Cpu, batch, ta, r, keepUnmergedInOrder: true, cpuOrder.Cpu);
        var order = pair.Ints(pair.ReadCpuInts(cpuOrder.Cpu, batch * ta));
        int first = distillToken ? 1 : 0, last = destinations is int few ? Math.Min(tb, first + few) : tb;
        int sink = tb > first ? random.Next(first, tb) : 0;
        var bestIndex = pair.Ints(Enumerable.Range(0, batch * ta).Select(_ => allIntoOne ? sink : tb > first ? random.Next(first, last) : 0).ToArray());
        var xOut = pair.FloatOutput(batch * newTokens * channels);
        var sizeOut = pair.FloatOutput(batch * newTokens);
        var groupsOut = pair.IntOutput(batch * originalTokens);

        pair.Cpu.Merge(x.Cpu, size.Cpu, groups.Cpu, order.Cpu, bestIndex.Cpu, weight.Cpu, batch, tokens, channels, originalTokens, r, distillToken ? 2 : 0,
            xOut.Cpu, sizeOut.Cpu, groupsOut.Cpu);
        pair.Device.Merge(x.Device, size.Device, groups.Device, order.Device, bestIndex.Device, weight.Device, batch, tokens, channels, originalTokens, r,
            distillToken ? 2 : 0, xOut.Device, sizeOut.Device, groupsOut.Device);

        // The same operations in the same order, unfused: expected bit-identical; 1e-6 relative allowed.
        pair.Close(pair.ReadCpu(xOut.Cpu, batch * newTokens * channels), pair.ReadDevice(xOut.Device, batch * newTokens * channels, "x"), 0f, 1e-6f, "x");
        pair.Identical(pair.ReadCpu(sizeOut.Cpu, batch * newTokens), pair.ReadDevice(sizeOut.Device, batch * newTokens, "sizes"), "sizes");
        pair.Identical(pair.ReadCpuInts(groupsOut.Cpu, batch * originalTokens), pair.ReadDeviceInts(groupsOut.Device, batch * originalTokens, "groups"), "groups");
    }
}
