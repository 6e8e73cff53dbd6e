using ToMe.Backends;
using ToMe.Model;
using ToMe.Weights;

namespace ToMe.Tests.Support;

/// <summary>
/// Runs one golden fixture case on a backend and checks it against timm + official ToMe: tokens per layer, every layer's
/// merge decision, groups, sizes, logits, and (r = 0 with prop-attn) the embedding and each block's hidden states.
/// </summary>
internal static class GoldenCase
{
    public static void Check(IBackend backend, string model, string caseKey, double logitsTolerance, double hiddenAtol, double hiddenRtol)
    {
        using var opened = Fixtures.Open(model, caseKey);
        var (weights, golden, fixture, input) = (opened.Weights, opened.Golden, opened.Case, opened.Input);
        int batch = opened.Batch;
        var config = weights.Config;
        string what = $"{model} {caseKey} ({backend.Name})";

        var plan = fixture.Schedule.Plan(config.Depth, config.Tokens, config.PrefixTokens);
        Assert.Equal(fixture.RPerLayer, plan.RPerLayer);

        var decisions = new Dictionary<int, (int[] Src, int[] Dst)>();
        var hidden = new Dictionary<int, float[]>();
        float[]? embed = null;
        var trace = new ForwardTrace
        {
            OnEmbed = e => embed = e,
            OnBlock = (l, h) => hidden[l] = h,
            OnMerge = (l, s, d) => decisions[l] = (s, d),
        };
        using var pass = new ForwardPass(backend, weights);
        var result = pass.Run(input, batch, opened.Options, trace);

        Assert.Equal(fixture.TokensPerLayer, result.TokensPerLayer);
        Assert.Equal(fixture.FinalTokens, result.FinalTokens);
        for (int l = 0; l < config.Depth; l++)
        {
            var srcName = $"{caseKey}.layer{l}.src_idx";
            if (!golden.Contains(srcName))
            {
                Assert.False(decisions.ContainsKey(l), $"{what}: layer {l} merged but the reference did not");
                continue;
            }
            Assert.True(decisions.ContainsKey(l), $"{what}: layer {l}: the reference merged, the engine did not");
            Assert.Equal(golden.ReadInt32(srcName), decisions[l].Src);
            Assert.Equal(golden.ReadInt32($"{caseKey}.layer{l}.dst_idx"), decisions[l].Dst);
        }
        if (golden.Contains($"{caseKey}.group"))
        {
            Assert.Equal(golden.ReadInt32($"{caseKey}.group"), result.Groups);
            Assert.Equal(golden.ReadFloat32($"{caseKey}.size"), result.Size);
        }
        Close.AssertAll(golden.ReadFloat64($"{caseKey}.logits_f64"), result.Logits, atol: logitsTolerance, rtol: 0, what: $"{what} logits");

        if (fixture.RPerLayer.All(r => r == 0) && fixture.PropAttn && golden.Contains("r0.embed"))
        {
            Close.AssertAll(golden.ReadFloat64("r0.embed"), embed!, 1e-4, 0, $"{what} embedding");
            for (int l = 0; l < config.Depth; l++)
                Close.AssertAll(golden.ReadFloat64($"r0.block{l}"), hidden[l], hiddenAtol, hiddenRtol, $"{what} block {l}");
        }
    }
}
