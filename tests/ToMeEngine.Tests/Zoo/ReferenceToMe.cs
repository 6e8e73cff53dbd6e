using ToMe.Merging;
using ToMe.Tests.Merging;

namespace ToMe.Tests.Zoo;

/// <summary>
/// ToMe's bipartite soft matching (SPEC-merging §2) for <see cref="ReferenceVit"/>, written naively for any number of
/// prefix tokens p: tokens alternate A (even) / B (odd) over the whole sequence; a prefix token in A is never a source,
/// a prefix token in B never a destination; the output is [prefix tokens in order, kept A, B]. For p = 1 (class token)
/// and p = 2 (class + distillation) this is exactly ToMe's rule.
/// </summary>
internal sealed class ReferenceToMe(int r, int prefixTokens)
{
    /// <summary>The smallest gap between the r-th and (r+1)-th ranked scores seen, to explain a decision mismatch.</summary>
    public double Margin { get; private set; } = double.PositiveInfinity;

    public Assignment? Merge(LayerState state)
    {
        int tokens = state.Metric.Length, p = prefixTokens;
        int rl = MergeSchedule.Clamp(r, tokens, p);
        if (rl <= 0)
            return null;
        var m = ReferenceVit.Normalize(state.Metric);
        bool IsPrefix(int t) => t < p;
        var setB = Enumerable.Range(0, tokens / 2).Select(j => 2 * j + 1).Where(t => !IsPrefix(t)).ToArray();
        var scored = new List<(double Score, int Token, int Dst)>();
        for (int a = 0; a < tokens; a += 2)
        {
            if (IsPrefix(a))
                continue;
            double best = double.NegativeInfinity;
            int dst = -1;
            foreach (int b in setB)
            {
                double s = ReferenceVit.Dot(m[a], m[b]);
                if (s > best)
                    (best, dst) = (s, b);
            }
            scored.Add((best, a, dst));
        }
        var ranked = scored.OrderByDescending(e => e.Score).ThenBy(e => e.Token).ToList();
        if (rl < ranked.Count)
            Margin = Math.Min(Margin, ranked[rl - 1].Score - ranked[rl].Score);
        var sources = ranked.Take(rl).ToDictionary(e => e.Token, e => e.Dst);
        // ToMe keeps the unmerged A tokens in rank order, re-sorted by position when there is a protected token.
        var kept = ranked.Skip(rl).Select(e => e.Token);
        if (p > 0)
            kept = kept.Order();
        var order = Enumerable.Range(0, p).Concat(kept).Concat(setB).ToList();
        var dest = new int[tokens];
        for (int i = 0; i < order.Count; i++)
            dest[order[i]] = i;
        foreach (var (a, d) in sources)
            dest[a] = dest[d];
        return new Assignment(dest, order.Count);
    }
}
