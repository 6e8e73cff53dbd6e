using ToMe.Merging;

namespace ToMe.Model;

/// <summary>
/// Multiply-adds of one image's forward pass, counted the way fvcore (and so the ToMe paper's "GFLOPs") counts them:
/// matrix products only; norms, softmax and merging are left out.
/// </summary>
internal static class FlopCounter
{
    public static double MultiplyAdds(ModelConfig c, MergeSchedule schedule)
    {
        var (tokens, rs, _) = schedule.Plan(c.Depth, c.Tokens, c.PrefixTokens);
        return MultiplyAdds(c, tokens, rs);
    }

    /// <summary>The cost per image of a forward pass that ran, at the tokens it actually had (ToMato's depend on the image).</summary>
    public static double MultiplyAdds(ModelConfig c, ForwardResult result)
    {
        var merged = Enumerable.Range(0, c.Depth)
            .Select(l => result.TokensPerLayer[l] - (l + 1 < c.Depth ? result.TokensPerLayer[l + 1] : result.FinalTokens)).ToArray();
        return MultiplyAdds(c, result.TokensPerLayer, merged);
    }

    /// <summary>The cost of a forward pass whose block l is entered by tokens[l] tokens and merges merged[l] of them away.</summary>
    public static double MultiplyAdds(ModelConfig c, IReadOnlyList<int> tokens, IReadOnlyList<int> rs)
    {
        double dim = c.EmbedDim, hidden = c.MlpHidden;
        double total = (double)c.NumPatches * 3 * c.PatchSize * c.PatchSize * dim;
        for (int l = 0; l < c.Depth; l++)
        {
            double t = tokens[l], kept = t - rs[l];
            total += t * dim * 3 * dim;     // qkv
            total += 2 * t * t * dim;       // q·kᵀ and attention·v over all heads
            total += t * dim * dim;         // proj
            total += kept * dim * hidden * 2; // MLP runs after the merge
        }
        total += (c.Distilled ? 2 : 1) * dim * c.NumClasses;
        return total;
    }
}
