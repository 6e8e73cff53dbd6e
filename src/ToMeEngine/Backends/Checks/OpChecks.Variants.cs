using ToMe.Merging;

namespace ToMe.Backends.Checks;

// The ops of the merge variants: ToMeCIS's scores and weighted merge, kth/random assignment, ToMato's grid components, the
// assigned merge. Integer outputs exactly, merged values to 1e-6 relative.
internal static partial class OpChecks
{
    public enum Scores { Positive, SomeZero, AllZero }

    /// <summary>How much a ToMato threshold joins: nothing, everything, or about a quarter, half or three quarters of the edges.</summary>
    public enum Threshold { Nothing, Sparse, Some, Dense, Everything }

    private static IEnumerable<OpCheck> VariantChecks()
    {
        foreach (var (b, t, h, d) in new[] { (1, 1, 3, 64), (3, 2, 4, 32), (3, 197, 3, 64), (1, 198, 12, 64), (2, 577, 6, 80), (1, 5, 1, 17), (3, 33, 2, 129) })
            yield return Check("class_importance", $"B={b} T={t} H={h} D={d}", pair => ClassImportance(pair, b, t, h, d));
        foreach (var (b, t, c, r, distilled, scores) in new[]
        {
            (1, 2, 8, 1, false, Scores.Positive), (3, 3, 16, 1, false, Scores.SomeZero), (3, 197, 64, 13, false, Scores.Positive),
            (3, 197, 64, 60, false, Scores.SomeZero), (1, 198, 64, 98, true, Scores.SomeZero), (2, 577, 48, 200, false, Scores.Positive),
            (1, 577, 40, 100, false, Scores.AllZero), (1, 1, 24, 0, false, Scores.Positive),
        })
            yield return Check("merge", $"B={b} T={t} C={c} r={r}{(distilled ? " distilled" : "")} weighted, scores={scores.ToString().ToLowerInvariant()}",
                pair => Merge(pair, b, t, c, r, distilled, allIntoOne: false, (random, _) => scores switch
                {
                    // Class-importance-like scores; zeros make single tokens and whole groups fall back to the size weights.
                    Scores.AllZero => 0f,
                    Scores.SomeZero when random.Next(3) == 0 => 0f,
                    _ => random.NextSingle() * 0.05f,
                }, seed: 17, destinations: 7));
        foreach (var (b, t, d, k, r) in new[]
        {
            (1, 1, 64, 2, 0), (3, 2, 64, 2, 0), (3, 197, 64, 2, 0), (1, 198, 64, 3, 0), (2, 577, 64, 4, 0), (1, 197, 80, 0, 8),
            (3, 198, 64, 0, 60), (2, 577, 48, 0, 250), (1, 2, 64, 0, 0), (3, 33, 191, 5, 0),
        })
            yield return Check("assign_to_most_similar", $"B={b} T={t} D={d} {(k >= 2 ? $"kth k={k}" : $"random r={r}")}", pair => Assign(pair, b, t, d, k, r));
        foreach (var (t, k, r) in new[] { (197, 3, 0), (198, 0, 40), (577, 2, 0) })
            yield return Check("assign_to_most_similar", $"B=3 T={t} D=64 {(k >= 2 ? $"kth k={k}" : $"random r={r}")} ties and zero norms", pair => AssignTies(pair, t, k, r));
        foreach (var (b, p, gh, gw, d, kind) in new[]
        {
            (1, 1, 14, 14, 64, Threshold.Some), (3, 1, 14, 14, 64, Threshold.Nothing), (3, 1, 14, 14, 64, Threshold.Everything),
            (3, 1, 16, 16, 64, Threshold.Some), (1, 2, 14, 14, 64, Threshold.Sparse), (2, 1, 16, 16, 32, Threshold.Dense),
            (1, 1, 1, 1, 64, Threshold.Some), (3, 0, 1, 1, 64, Threshold.Everything), (3, 2, 7, 5, 64, Threshold.Some),
            (1, 1, 5, 7, 48, Threshold.Dense), (3, 2, 7, 5, 64, Threshold.Everything), (1, 1, 64, 64, 64, Threshold.Some),
            (2, 1, 64, 64, 64, Threshold.Everything), (1, 1, 1, 4096, 16, Threshold.Everything), (1, 0, 4096, 1, 16, Threshold.Dense),
            (1, 1, 32, 128, 16, Threshold.Some),
        })
            yield return Check("grid_components", $"B={b} prefix={p} {gh}x{gw} D={d} joins={kind.ToString().ToLowerInvariant()}", pair => GridComponents(pair, b, p, gh, gw, d, kind));
        foreach (var (b, t, c, used, next) in new[] { (1, 1, 8, 1, 1), (3, 2, 16, 1, 2), (3, 197, 64, 98, 98), (1, 198, 64, 66, 80), (2, 577, 48, 150, 200), (3, 197, 100, 1, 1), (1, 577, 40, 577, 577), (3, 577, 64, 20, 500) })
            yield return Check("merge_assigned", $"B={b} T={t} C={c} used={used} T'={next}", pair => MergeAssigned(pair, b, t, c, used, next));
    }

    private static void ClassImportance(OpCheckPair pair, int batch, int tokens, int heads, int headDim)
    {
        int c = heads * headDim, rows = batch * tokens;
        var values = OpCheckPair.Random(rows * 3 * c, seed: tokens * 5 + heads, scale: 2f);
        // Row 0 of every image: v all zero, score exactly 0.
        for (int b = 0; b < batch; b++)
            values.AsSpan(b * tokens * 3 * c + 2 * c, c).Clear();
        var random = new Random(tokens);
        var qkv = pair.Floats(values);
        var classAttention = pair.Floats(Enumerable.Range(0, rows).Select(_ => random.NextSingle() / tokens).ToArray());
        var score = pair.FloatOutput(rows);

        pair.Cpu.ClassImportance(qkv.Cpu, classAttention.Cpu, batch, tokens, heads, headDim, score.Cpu);
        pair.Device.ClassImportance(qkv.Device, classAttention.Device, batch, tokens, heads, headDim, score.Device);

        var actual = pair.ReadDevice(score.Device, rows, "score");
        // Same head sum and mean; the sums of squares are both fixed-order but may be vectorized differently.
        pair.Close(pair.ReadCpu(score.Cpu, rows), actual, 0f, 1e-5f, "score");
        for (int b = 0; b < batch; b++)
            pair.Expect(actual[b * tokens] == 0f, F($"image {b}: a zero v scored {actual[b * tokens]}, not 0"));
    }

    private static void Assign(OpCheckPair pair, int batch, int tokens, int dim, int k, int r)
    {
        // k ≥ 2: kth roles (no protection); otherwise random roles with r sources, one prefix token protected.
        int prefix = k >= 2 ? 0 : 1;
        var roles = Roles(batch, tokens, k, prefix, r, seed: tokens + r);
        var metric = OpCheckPair.Random(batch * tokens * dim, seed: tokens * 3 + dim);
        var (expected, actual) = RunAssign(pair, metric, roles, batch, tokens, dim, prefix);
        // Two kept tokens may score within rounding of each other: then either is right, as long as the device's choice is a
        // candidate that scores the CPU's best.
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i] == actual[i])
                continue;
            int b = i / tokens, t = i % tokens;
            int chosen = Array.IndexOf(roles, actual[i], b * tokens, tokens) - b * tokens, cpuChosen = Array.IndexOf(roles, expected[i], b * tokens, tokens) - b * tokens;
            bool valid = roles[i] == TokenRoles.Source && actual[i] >= prefix && expected[i] >= 0 && chosen >= 0 && cpuChosen >= 0;
            double score = valid ? Cosine(metric, dim, b * tokens + t, b * tokens + chosen) : double.NaN;
            double cpuScore = valid ? Cosine(metric, dim, b * tokens + t, b * tokens + cpuChosen) : double.NaN;
            pair.Expect(valid && Math.Abs(score - cpuScore) <= 1e-5,
                F($"token {t} of image {b} (role {roles[i]}) went to {actual[i]} (cosine {score}), the CPU's to {expected[i]} ({cpuScore})"));
        }
    }

    private static void AssignTies(OpCheckPair pair, int tokens, int k, int r)
    {
        const int batch = 3, dim = 64;
        int prefix = k >= 2 ? 0 : 1;
        var roles = Roles(batch, tokens, k, prefix, r, seed: 11);
        var metric = OpCheckPair.Random(batch * tokens * dim, seed: 12);
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
        var (expected, actual) = RunAssign(pair, metric, roles, batch, tokens, dim, prefix);
        pair.Identical(expected, actual, "dest");
    }

    private static (int[] Expected, int[] Actual) RunAssign(OpCheckPair pair, float[] metricValues, int[] roleValues, int batch, int tokens, int dim, int protectedOutputs)
    {
        var metric = pair.Floats(metricValues);
        var role = pair.Ints(roleValues);
        var dest = pair.IntOutput(batch * tokens);
        pair.Cpu.AssignToMostSimilar(metric.Cpu, role.Cpu, batch, tokens, dim, protectedOutputs, dest.Cpu);
        pair.Device.AssignToMostSimilar(metric.Device, role.Device, batch, tokens, dim, protectedOutputs, dest.Device);
        return (pair.ReadCpuInts(dest.Cpu, batch * tokens), pair.ReadDeviceInts(dest.Device, batch * tokens, "dest"));
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

    private static void GridComponents(OpCheckPair pair, int batch, int prefix, int gridHeight, int gridWidth, int dim, Threshold kind)
    {
        int tokens = prefix + gridHeight * gridWidth, patches = gridHeight * gridWidth;
        var metric = OpCheckPair.Random(batch * tokens * dim, seed: tokens + dim);
        // A few zero-norm patches: similarity 0 to every neighbour.
        var random = new Random(tokens);
        for (int b = 0; b < batch; b++)
            for (int z = 0; z < Math.Min(3, patches / 10); z++)
                metric.AsSpan((b * tokens + prefix + random.Next(patches)) * dim, dim).Clear();
        float threshold = PickThreshold(metric, batch, tokens, dim, prefix, gridHeight, gridWidth, kind);

        var m = pair.Floats(metric);
        var dest = pair.IntOutput(batch * tokens);
        var counts = pair.IntOutput(batch);
        pair.Cpu.GridComponents(m.Cpu, batch, tokens, dim, prefix, gridHeight, gridWidth, threshold, dest.Cpu, counts.Cpu);
        pair.Device.GridComponents(m.Device, batch, tokens, dim, prefix, gridHeight, gridWidth, threshold, dest.Device, counts.Device);

        var expectedCounts = pair.ReadCpuInts(counts.Cpu, batch);
        pair.Identical(expectedCounts, pair.ReadDeviceInts(counts.Device, batch, "counts"), "counts");
        pair.Identical(pair.ReadCpuInts(dest.Cpu, batch * tokens), pair.ReadDeviceInts(dest.Device, batch * tokens, "dest"), "dest");
        // The threshold did what the case says (else the case would test less than its name).
        var (low, high) = kind switch
        {
            Threshold.Nothing => (prefix + patches, prefix + patches),
            Threshold.Everything => (prefix + 1, prefix + 1),
            _ => (prefix + 1, prefix + patches),
        };
        pair.Expect(expectedCounts.All(n => n >= low && n <= high), $"the CPU kept [{string.Join(", ", expectedCounts)}] tokens, expected {low}..{high}");
    }

    /// <summary>
    /// Nothing: 1.5 (cosines are ≤ 1 + rounding); everything: −1.5. Otherwise a threshold between two neighbouring edge
    /// cosines (in double) at the wanted quantile that lie at least 4e-4 apart, so that rounding differences between
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
            foreach (int i in new[] { start + step, start - step })
                if (i >= 0 && i + 1 < edges.Count && edges[i + 1] - edges[i] > 4e-4)
                    return (float)((edges[i] + edges[i + 1]) / 2);
        return (float)(edges[^1] + 0.5);
    }

    private static void MergeAssigned(OpCheckPair pair, int batch, int tokens, int channels, int usedSlots, int newTokens)
    {
        int originalTokens = tokens + 7;
        var random = new Random(tokens * 13 + usedSlots);
        var x = pair.Floats(OpCheckPair.Random(batch * tokens * channels, seed: 29, scale: 3f));
        // Sizes 0..5: tokens of size 0 (ToMato's padding) contribute nothing, and a slot of only those stays unnormalized.
        var size = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => (float)random.Next(0, 6)).ToArray());
        // Each token to one of the first usedSlots slots or dropped (−1); slots ≥ usedSlots receive nothing (padding).
        var dest = pair.Ints(Enumerable.Range(0, batch * tokens).Select(_ => random.Next(8) == 0 ? -1 : random.Next(usedSlots)).ToArray());
        var groups = pair.Ints(Enumerable.Range(0, batch * originalTokens).Select(_ => random.Next(10) == 0 ? -1 : random.Next(tokens)).ToArray());
        var xOut = pair.FloatOutput(batch * newTokens * channels);
        var sizeOut = pair.FloatOutput(batch * newTokens);
        var groupsOut = pair.IntOutput(batch * originalTokens);

        pair.Cpu.MergeAssigned(x.Cpu, size.Cpu, groups.Cpu, dest.Cpu, batch, tokens, channels, originalTokens, newTokens, xOut.Cpu, sizeOut.Cpu, groupsOut.Cpu);
        pair.Device.MergeAssigned(x.Device, size.Device, groups.Device, dest.Device, batch, tokens, channels, originalTokens, newTokens,
            xOut.Device, sizeOut.Device, groupsOut.Device);

        var values = pair.ReadDevice(xOut.Device, batch * newTokens * channels, "x");
        pair.Close(pair.ReadCpu(xOut.Cpu, batch * newTokens * channels), values, 0f, 1e-6f, "x");
        var sizes = pair.ReadDevice(sizeOut.Device, batch * newTokens, "sizes");
        pair.Identical(pair.ReadCpu(sizeOut.Cpu, batch * newTokens), sizes, "sizes");
        pair.Identical(pair.ReadCpuInts(groupsOut.Cpu, batch * originalTokens), pair.ReadDeviceInts(groupsOut.Device, batch * originalTokens, "groups"), "groups");
        // Padding slots: zeros, size 0.
        for (int b = 0; b < batch; b++)
            for (int j = usedSlots; j < newTokens; j++)
                pair.Expect(sizes[b * newTokens + j] == 0f && values.AsSpan((b * newTokens + j) * channels, channels).IndexOfAnyExcept(0f) < 0,
                    $"padding slot {j} of image {b} is not zeros of size 0");
    }
}
