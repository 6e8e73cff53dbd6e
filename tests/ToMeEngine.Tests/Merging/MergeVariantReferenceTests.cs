using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Merging;

/// <summary>
/// kth, random, ToMato and ToMeCIS on fixture models against <see cref="ReferenceVit"/>, whose merges are written naively
/// from SPEC-merging §3: logits within 1e-4, groups identical.
/// </summary>
public class MergeVariantReferenceTests
{
    /// <summary>
    /// The smallest margin of any decision the reference made (best vs runner-up, similarity vs threshold): below ~1e-6
    /// float32 may legitimately decide otherwise, so a group mismatch reports it.
    /// </summary>
    private sealed class Margin
    {
        public double Value = double.PositiveInfinity;
    }

    internal static (ModelWeights Weights, float[] Input, int Batch) Load(string model)
    {
        var weights = Fixtures.Model(model);
        using var golden = SafeTensorsFile.Open(Fixtures.GoldenPath(model));
        return (weights, golden.ReadFloat32("input"), golden.Get("input").Shape[0]);
    }

    internal static ForwardResult Run(ModelWeights weights, float[] input, int batch, ForwardOptions options, ForwardTrace? trace = null)
    {
        using var backend = new CpuBackend();
        using var pass = new ForwardPass(backend, weights);
        return pass.Run(input, batch, options, trace);
    }

    [Theory]
    [InlineData("vit_p14_d3", 2)]
    [InlineData("deit_t4_distilled", 3)]
    public void KthMatchesTheSpec(string model, int k)
    {
        var (weights, input, batch) = Load(model);
        var gap = new Margin();
        Compare(weights, input, batch, new ForwardOptions { Strategy = MergeStrategy.Kth(k) }, gap, state =>
        {
            int tokens = state.Metric.Length;
            if (tokens / k < Math.Max(1, weights.Config.PrefixTokens))
                return null;
            int full = tokens / k * k;
            var destinations = Enumerable.Range(0, full).Where(t => t % k == k - 1).ToArray();
            var dest = new int[tokens];
            var m = ReferenceVit.Normalize(state.Metric);
            for (int t = 0; t < tokens; t++)
            {
                if (t >= full)
                    dest[t] = -1;
                else if (t % k == k - 1)
                    dest[t] = t / k;
                else
                    dest[t] = MostSimilar(m, t, destinations, gap) / k;
            }
            return new Assignment(dest, tokens / k);
        });
    }

    [Theory]
    [InlineData("vit_p14_d3", "40", 7)]
    [InlineData("deit_t4_distilled", "[30,20,0,50]", 11)]
    public void RandomMatchesTheSpec(string model, string r, long seed)
    {
        var (weights, input, batch) = Load(model);
        var schedule = MergeSchedule.Parse(r);
        int p = weights.Config.PrefixTokens, s = weights.Config.ImageSize;
        var rs = schedule.ForLayers(weights.Config.Depth);
        var gap = new Margin();
        Compare(weights, input, batch, new ForwardOptions { Strategy = MergeStrategy.Random(seed), Schedule = schedule }, gap, state =>
        {
            int tokens = state.Metric.Length, rl = MergeSchedule.Clamp(rs[state.Layer], tokens, p);
            if (rl == 0)
                return null;
            // The choice of sources is the engine's seeded draw; everything after it is written from the spec.
            var role = new int[tokens];
            var key = TokenRoles.ImageKey(seed, input.AsSpan(state.Image * 3 * s * s, 3 * s * s));
            TokenRoles.Random(key, state.Layer, tokens, p, rl, role);
            var sources = Enumerable.Range(0, tokens).Where(t => role[t] == TokenRoles.Source).ToArray();
            Assert.Equal(rl, sources.Length);
            Assert.All(sources, t => Assert.True(t >= p, "a prefix token was drawn as a source"));
            var kept = Enumerable.Range(0, tokens).Except(sources).ToArray(); // ascending: the prefix stays first
            var candidates = kept.Where(t => t >= p).ToArray();
            var m = ReferenceVit.Normalize(state.Metric);
            var dest = new int[tokens];
            for (int i = 0; i < kept.Length; i++)
                dest[kept[i]] = i;
            foreach (int t in sources)
                dest[t] = Array.IndexOf(kept, MostSimilar(m, t, candidates, gap));
            return new Assignment(dest, kept.Length);
        });
    }

    [Theory]
    [InlineData("vit_p14_d3", 0.35f)]
    [InlineData("deit_t4_distilled", 0.5f)]
    public void ToMatoMatchesTheSpec(string model, float threshold)
    {
        var (weights, input, batch) = Load(model);
        int p = weights.Config.PrefixTokens, g = weights.Config.GridSize;
        var gap = new Margin();
        var result = Compare(weights, input, batch, new ForwardOptions { Strategy = MergeStrategy.ToMato(threshold), ProportionalAttention = false }, gap, state =>
        {
            if (state.Layer != 0)
                return null;
            var m = ReferenceVit.Normalize(state.Metric);
            bool Joined(int a, int b)
            {
                double sim = ReferenceVit.Dot(m[p + a], m[p + b]);
                gap.Value = Math.Min(gap.Value, Math.Abs(sim - threshold));
                return sim > threshold;
            }
            // Flood fill from each unvisited patch in index order: components come out numbered by their smallest patch.
            var dest = Enumerable.Range(0, p).Concat(Enumerable.Repeat(-1, g * g)).ToArray();
            int next = p;
            for (int start = 0; start < g * g; start++)
            {
                if (dest[p + start] >= 0)
                    continue;
                var stack = new Stack<int>([start]);
                dest[p + start] = next;
                while (stack.TryPop(out int i))
                {
                    int y = i / g, x = i % g;
                    foreach (var (ny, nx) in new[] { (y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1) })
                    {
                        int j = ny * g + nx;
                        if (ny >= 0 && ny < g && nx >= 0 && nx < g && dest[p + j] < 0 && Joined(i, j))
                        {
                            dest[p + j] = next;
                            stack.Push(j);
                        }
                    }
                }
                next++;
            }
            return new Assignment(dest, next);
        }, padded: true);
        Assert.True(result.FinalTokens < weights.Config.Tokens / 2, $"threshold {threshold} merged too little to test anything ({result.FinalTokens} tokens)");
    }

    [Fact]
    public void CisMatchesTheSpec()
    {
        var (weights, input, batch) = Load("deit_t4_distilled");
        const int r = 25;
        int p = weights.Config.PrefixTokens;
        var gap = new Margin();
        Compare(weights, input, batch, new ForwardOptions { Strategy = MergeStrategy.Cis, Schedule = MergeSchedule.Constant(r) }, gap, state =>
        {
            // ToMe's bipartite matching (SPEC-merging §2) with the distillation token; merge weights a_t·‖v̄_t‖.
            int tokens = state.Metric.Length, rl = MergeSchedule.Clamp(r, tokens, p);
            var m = ReferenceVit.Normalize(state.Metric);
            var setB = Enumerable.Range(0, tokens / 2).Select(j => 2 * j + 1).Where(t => t != 1).ToArray();
            var best = new List<(double Score, int A, int Dst)>();
            for (int i = 1; 2 * i < tokens; i++)
            {
                int dst = MostSimilar(m, 2 * i, setB, gap);
                best.Add((ReferenceVit.Dot(m[2 * i], m[dst]), 2 * i, dst));
            }
            var ranked = best.OrderByDescending(e => e.Score).ThenBy(e => e.A).ToArray();
            gap.Value = Math.Min(gap.Value, ranked[rl - 1].Score - ranked[rl].Score);
            var sources = ranked.Take(rl).ToDictionary(e => e.A, e => e.Dst);
            var keptA = Enumerable.Range(0, (tokens + 1) / 2).Select(i => 2 * i).Where(t => !sources.ContainsKey(t)).ToArray();
            var order = new List<int> { keptA[0], 1 };
            order.AddRange(keptA.Skip(1));
            order.AddRange(Enumerable.Range(1, tokens / 2 - 1).Select(j => 2 * j + 1));
            var dest = new int[tokens];
            for (int i = 0; i < order.Count; i++)
                dest[order[i]] = i;
            foreach (var (a, d) in sources)
                dest[a] = dest[d];
            var score = state.ClassAttention.Select((a, t) => a * Math.Sqrt(state.ValueMean[t].Sum(v => v * v))).ToArray();
            return new Assignment(dest, order.Count, score);
        });
    }

    /// <summary>The candidate most similar to token t (first on ties), tracking the smallest best-vs-runner-up margin.</summary>
    private static int MostSimilar(double[][] m, int t, int[] candidates, Margin gap)
    {
        double best = double.NegativeInfinity, second = double.NegativeInfinity;
        int arg = -1;
        foreach (int u in candidates)
        {
            double s = ReferenceVit.Dot(m[t], m[u]);
            if (s > best)
            {
                (second, best, arg) = (best, s, u);
            }
            else if (s > second)
            {
                second = s;
            }
        }
        gap.Value = Math.Min(gap.Value, best - second);
        return arg;
    }

    private static ForwardResult Compare(ModelWeights weights, float[] input, int batch, ForwardOptions options, Margin gap,
        Func<LayerState, Assignment?> merge, bool padded = false)
    {
        var result = Run(weights, input, batch, options);
        var reference = new ReferenceVit(weights);
        int t0 = weights.Config.Tokens, k = weights.Config.NumClasses;
        for (int b = 0; b < batch; b++)
        {
            var (logits, groups, size, tokens) = reference.Run(input, b, options.ProportionalAttention || padded, merge);
            var engineGroups = result.Groups.AsSpan(b * t0, t0).ToArray();
            Assert.True(groups.SequenceEqual(engineGroups),
                $"{options.Strategy} image {b}: groups differ from the reference's at original tokens "
                + $"[{string.Join(", ", Enumerable.Range(0, t0).Where(i => groups[i] != engineGroups[i]).Take(8))}]; smallest decision margin {gap.Value:E2}");
            if (!padded)
                Assert.Equal(tokens, result.TokensPerLayer);
            var engineSize = result.Size.AsSpan(b * result.FinalTokens, result.FinalTokens).ToArray();
            Assert.Equal(size.Select(v => (float)v), engineSize.Take(size.Length));
            Assert.All(engineSize.Skip(size.Length), v => Assert.Equal(0f, v));
            Close.AssertAll(logits, result.Logits.AsSpan(b * k, k), 1e-4, 0, $"{options.Strategy} image {b} logits");
        }
        return result;
    }
}
