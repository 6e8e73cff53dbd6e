using System.Globalization;

namespace ToMe.Merging;

/// <summary>
/// Which token-merging algorithm a forward pass runs (SPEC-merging §2–§3). The schedule r lives in
/// <see cref="EngineOptions.Schedule"/>; ToMe, random and CIS read it, kth, ToMato and none ignore it.
/// </summary>
public abstract record MergeStrategy
{
    private protected MergeStrategy() { }

    /// <summary>ToMe's bipartite soft matching with the schedule r (the default).</summary>
    public static MergeStrategy ToMe { get; } = new ToMeMerge();

    /// <summary>No merging at all, whatever the schedule says.</summary>
    public static MergeStrategy None { get; } = new NoMerge();

    /// <summary>ToMe's matching, merge weights from the class-importance score a_t·‖v̄_t‖ (needs a class token).</summary>
    public static MergeStrategy Cis { get; } = new CisMerge();

    /// <summary>
    /// ToMe's kth bipartite matching in every block: the last token of each group of k merges in the other k − 1.
    /// Applied while the result keeps at least max(1, prefix tokens) tokens.
    /// </summary>
    public static MergeStrategy Kth(int k) =>
        k >= 2 ? new KthMerge(k) : throw new ArgumentOutOfRangeException(nameof(k), k, "kth merging needs k >= 2");

    /// <summary>Random bipartite matching with the schedule r; the sources are drawn from <paramref name="seed"/> and the image.</summary>
    public static MergeStrategy Random(long seed) => new RandomMerge(seed);

    /// <summary>ToMato: once, after block 0's attention, join 4-neighbour patches whose metric cosine exceeds the threshold.</summary>
    public static MergeStrategy ToMato(float threshold) =>
        float.IsFinite(threshold) ? new ToMatoMerge(threshold) : throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "the ToMato threshold must be a finite number");

    /// <summary>
    /// The command line's form: a name and the parameters it needs. Throws <see cref="FormatException"/> naming what is
    /// missing or wrong, and for parameters the strategy does not use.
    /// </summary>
    public static MergeStrategy Parse(string name, int? k = null, long? seed = null, double? threshold = null)
    {
        var key = name.Trim().ToLowerInvariant();
        void Unused(bool given, string option)
        {
            if (given)
                throw new FormatException($"--merge {key} does not take {option}");
        }
        switch (key)
        {
            case "tome" or "cis" or "none":
                Unused(k is not null, "--k");
                Unused(seed is not null, "--seed");
                Unused(threshold is not null, "--threshold");
                return key == "tome" ? ToMe : key == "cis" ? Cis : None;
            case "kth":
                Unused(seed is not null, "--seed");
                Unused(threshold is not null, "--threshold");
                if (k is not int kk)
                    throw new FormatException("--merge kth needs --k (an integer >= 2)");
                if (kk < 2)
                    throw new FormatException($"--k {kk}: kth merging needs k >= 2");
                return Kth(kk);
            case "random":
                Unused(k is not null, "--k");
                Unused(threshold is not null, "--threshold");
                return Random(seed ?? throw new FormatException("--merge random needs --seed (an integer)"));
            case "tomato":
                Unused(k is not null, "--k");
                Unused(seed is not null, "--seed");
                if (threshold is not double t)
                    throw new FormatException("--merge tomato needs --threshold (a cosine similarity, e.g. 0.9)");
                if (!double.IsFinite(t))
                    throw new FormatException($"--threshold {t.ToString(CultureInfo.InvariantCulture)}: must be a finite number");
                return ToMato((float)t);
            default:
                throw new FormatException($"--merge '{name}': expected tome, kth, random, tomato, cis or none");
        }
    }

    /// <summary>
    /// Tokens entering each block and tokens each block merges away, or null where that depends on the image (ToMato).
    /// </summary>
    public (int[] TokensPerLayer, int[] MergedPerLayer, int FinalTokens)? Plan(MergeSchedule schedule, int layers, int tokens, int prefixTokens)
    {
        switch (this)
        {
            case ToMatoMerge:
                return null;
            case NoMerge:
                return MergeSchedule.None.Plan(layers, tokens, prefixTokens);
            case KthMerge { K: var k }:
                var entering = new int[layers];
                var merged = new int[layers];
                for (int l = 0; l < layers; l++)
                {
                    entering[l] = tokens;
                    merged[l] = KthApplies(k, tokens, prefixTokens) ? tokens - tokens / k : 0;
                    tokens -= merged[l];
                }
                return (entering, merged, tokens);
            default:
                return schedule.Plan(layers, tokens, prefixTokens);
        }
    }

    /// <summary>Whether the strategy reads the schedule r (ToMe, random, CIS).</summary>
    public bool UsesSchedule => this is ToMeMerge or RandomMerge or CisMerge;

    // Without protection the prefix positions hold whatever lands there, but the head still needs that many tokens.
    internal static bool KthApplies(int k, int tokens, int prefixTokens) => tokens / k >= Math.Max(1, prefixTokens);

    /// <summary>The command line's name and parameters, e.g. <c>kth(k=2)</c>.</summary>
    public abstract override string ToString();
}

internal sealed record ToMeMerge : MergeStrategy
{
    public override string ToString() => "tome";
}

internal sealed record NoMerge : MergeStrategy
{
    public override string ToString() => "none";
}

internal sealed record CisMerge : MergeStrategy
{
    public override string ToString() => "cis";
}

internal sealed record KthMerge(int K) : MergeStrategy
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"kth(k={K})");
}

internal sealed record RandomMerge(long Seed) : MergeStrategy
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"random(seed={Seed})");
}

internal sealed record ToMatoMerge(float Threshold) : MergeStrategy
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"tomato(threshold={Threshold:R})");
}
