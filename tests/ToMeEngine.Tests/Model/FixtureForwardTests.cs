using ToMe.Backends.Cpu;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Model;

/// <summary>Every case of every golden fixture on the CPU backend: logits, merge decisions, groups, sizes, hidden states.</summary>
public class FixtureForwardTests
{
    public static TheoryData<string, string> Cases() => Fixtures.AllCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void CpuMatchesTimmAndOfficialToMe(string model, string caseKey)
    {
        if (caseKey == "(absent)")
            Fixtures.Folder(model); // skips, naming what is missing
        var weights = Fixtures.Model(model);
        using var golden = SafeTensorsFile.Open(Fixtures.GoldenPath(model));
        var fixture = Fixtures.Cases(golden).Single(c => c.Key == caseKey);
        var input = golden.ReadFloat32("input");
        int batch = golden.Get("input").Shape[0];
        var config = weights.Config;

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
        using var backend = new CpuBackend();
        using var pass = new ForwardPass(backend, weights);
        var result = pass.Run(input, batch, new ForwardOptions { Schedule = fixture.Schedule, ProportionalAttention = fixture.PropAttn }, trace);

        Assert.Equal(fixture.TokensPerLayer, result.TokensPerLayer);
        Assert.Equal(fixture.FinalTokens, result.FinalTokens);
        for (int l = 0; l < config.Depth; l++)
        {
            var srcName = $"{caseKey}.layer{l}.src_idx";
            if (!golden.Contains(srcName))
            {
                Assert.False(decisions.ContainsKey(l), $"layer {l} merged but the reference did not");
                continue;
            }
            Assert.True(decisions.ContainsKey(l), $"layer {l}: the reference merged, the engine did not");
            Assert.Equal(golden.ReadInt32(srcName), decisions[l].Src);
            Assert.Equal(golden.ReadInt32($"{caseKey}.layer{l}.dst_idx"), decisions[l].Dst);
        }
        if (golden.Contains($"{caseKey}.group"))
        {
            Assert.Equal(golden.ReadInt32($"{caseKey}.group"), result.Groups);
            Assert.Equal(golden.ReadFloat32($"{caseKey}.size"), result.Size);
        }
        Close.AssertAll(golden.ReadFloat64($"{caseKey}.logits_f64"), result.Logits, atol: 1e-4, rtol: 0, what: $"{model} {caseKey} logits");

        if (fixture.RPerLayer.All(r => r == 0) && fixture.PropAttn && golden.Contains("r0.embed"))
        {
            Close.AssertAll(golden.ReadFloat64("r0.embed"), embed!, 1e-4, 0, $"{model} embedding");
            for (int l = 0; l < config.Depth; l++)
                Close.AssertAll(golden.ReadFloat64($"r0.block{l}"), hidden[l], 1e-4, 1e-5, $"{model} block {l}");
        }
    }
}
