using ToMe.Merging;
using ToMe.Model;
using static ToMe.Tests.Merging.MergeVariantReferenceTests;

namespace ToMe.Tests.Merging;

public class UnmergeTests
{
    [Fact]
    public void WithoutMergingTheGridIsTheTokensWithoutTheClassToken()
    {
        var (weights, input, batch) = Load("vit_p14_d3");
        var config = weights.Config;
        int c = config.EmbedDim, t0 = config.Tokens, g = config.GridSize;
        var result = Run(weights, input, batch, new ForwardOptions { ReturnTokens = true });
        Assert.Equal(batch * t0 * c, result.Tokens!.Length);
        var grid = Unmerge.PatchGrid(result.Tokens, result.Groups, batch, result.FinalTokens, c, config.PrefixTokens, g, g);
        var expected = Enumerable.Range(0, batch).SelectMany(b => result.Tokens.AsSpan((b * t0 + 1) * c, (t0 - 1) * c).ToArray()).ToArray();
        Assert.Equal(expected, grid);
        Assert.Equal(result.Tokens, Unmerge.Tokens(result.Tokens, result.Groups, batch, result.FinalTokens, c));
    }

    [Theory]
    [InlineData("tome")]
    [InlineData("kth")]
    [InlineData("tomato")]
    public void EveryOriginalTokenTakesItsGroupsToken(string strategy)
    {
        var (weights, input, batch) = Load("deit_t4_distilled");
        var config = weights.Config;
        int c = config.EmbedDim, t0 = config.Tokens, g = config.GridSize, p = config.PrefixTokens;
        var merge = MergeStrategy.Parse(strategy, strategy == "kth" ? 4 : null, null, strategy == "tomato" ? 0.5 : null);
        var result = Run(weights, input, batch, new ForwardOptions { Strategy = merge, Schedule = MergeSchedule.Constant(30), ReturnTokens = true });
        int tf = result.FinalTokens;
        Assert.True(tf < t0);
        var dense = Unmerge.Tokens(result.Tokens!, result.Groups, batch, tf, c);
        var grid = Unmerge.PatchGrid(result.Tokens!, result.Groups, batch, tf, c, p, g, g);
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < t0; t++)
            {
                int holder = result.Groups[b * t0 + t];
                var expected = holder < 0 ? new float[c] : result.Tokens!.AsSpan((b * tf + holder) * c, c).ToArray();
                Assert.Equal(expected, dense.AsSpan((b * t0 + t) * c, c).ToArray());
                if (t >= p)
                    Assert.Equal(expected, grid.AsSpan((b * (t0 - p) + t - p) * c, c).ToArray());
            }
        }
    }

    [Fact]
    public void RejectsInconsistentShapes()
    {
        Assert.Throws<ArgumentException>(() => Unmerge.Tokens(new float[10], new int[4], 1, 2, 4));
        Assert.Throws<ArgumentException>(() => Unmerge.Tokens(new float[8], [0, 5], 1, 2, 4));
        Assert.Throws<ArgumentException>(() => Unmerge.PatchGrid(new float[8], [0, 1, 1], 1, 2, 4, 1, 2, 2));
    }
}
