using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Merging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Zoo;

/// <summary>
/// One round trip per architecture family: a seeded random timm state_dict written by torch (zoo_helper.py) →
/// weights-converter/tome_convert.py → the engine on the CPU, against the dense double-precision
/// <see cref="ReferenceVit"/> with <see cref="ReferenceToMe"/>'s merges: logits within 1e-4, identical groups.
/// </summary>
public class ZooRoundTripTests
{
    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var family in (string[])["vit", "deit_distilled", "avg_fc_norm", "mae", "deit3", "registers", "registers_embedded"])
            foreach (int r in (int[])[0, 4])
                data.Add(family, r);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ConvertedModelMatchesTheReference(string family, int r)
    {
        var folder = ZooPython.ConvertedFamily(family);
        using var engine = ToMeEngine.Load(folder, new EngineOptions { Backend = BackendKind.Cpu, Schedule = MergeSchedule.Constant(r) });
        var config = engine.Config;
        ExpectLayout(family, config);

        const int batch = 2;
        var input = Images(batch, config.ImageSize, seed: 5);
        var result = engine.Forward(input, batch);

        var weights = ModelLoader.Load(folder);
        var reference = new ReferenceVit(weights);
        var matcher = new ReferenceToMe(r, config.PrefixTokens);
        int t0 = config.Tokens, k = config.NumClasses;
        for (int b = 0; b < batch; b++)
        {
            var (logits, groups, _, tokensPerLayer) = reference.Run(input, b, propAttn: true, matcher.Merge);
            Assert.Equal(tokensPerLayer, result.TokensPerLayer);
            Assert.True(groups.SequenceEqual(result.Groups[(b * t0)..((b + 1) * t0)]),
                $"{family} r={r} image {b}: groups differ (smallest ranking margin {matcher.Margin:E2})");
            Close.AssertAll(logits, result.Logits.AsSpan(b * k, k), 1e-4, 0, $"{family} r={r} image {b} logits");
        }
        if (r > 0)
        {
            Assert.True(result.FinalTokens < t0, $"{family}: r={r} merged nothing");
            // Prefix tokens (class, distillation, registers) are never merged: each stays alone, at its position.
            for (int b = 0; b < batch; b++)
                for (int t = 0; t < config.PrefixTokens; t++)
                {
                    Assert.Equal(t, result.Groups[b * t0 + t]);
                    Assert.Equal(1f, result.Size[b * result.FinalTokens + t]);
                }
        }
    }

    /// <summary>
    /// Every merge strategy runs on a model with registers; those that protect prefix tokens (ToMe, CIS, random, ToMato)
    /// leave the class token and the 4 registers alone and in place.
    /// </summary>
    [Theory]
    [InlineData("tome", true)]
    [InlineData("cis", true)]
    [InlineData("random", true)]
    [InlineData("tomato", true)]
    [InlineData("kth", false)]
    public void EveryStrategyRunsWithRegisters(string strategy, bool protects)
    {
        var folder = ZooPython.ConvertedFamily("registers");
        var merge = MergeStrategy.Parse(strategy, k: strategy == "kth" ? 2 : null, seed: strategy == "random" ? 3 : null,
            threshold: strategy == "tomato" ? 0.2 : null);
        using var engine = ToMeEngine.Load(folder, new EngineOptions { Backend = BackendKind.Cpu, Merge = merge, Schedule = MergeSchedule.Constant(4) });
        const int batch = 2;
        var result = engine.Forward(Images(batch, engine.Config.ImageSize, seed: 7), batch);
        int t0 = engine.Config.Tokens;
        Assert.True(result.FinalTokens < t0, $"{strategy} merged nothing");
        Assert.All(result.Logits, v => Assert.True(float.IsFinite(v)));
        if (protects)
            for (int b = 0; b < batch; b++)
                Assert.Equal(Enumerable.Range(0, 5), result.Groups[(b * t0)..(b * t0 + 5)]);
    }

    /// <summary>The converter's config.json (timm's model_args) and its embedded config describe the same model.</summary>
    [Theory]
    [InlineData("vit")]
    [InlineData("deit_distilled")]
    [InlineData("avg_fc_norm")]
    [InlineData("mae")]
    [InlineData("deit3")]
    [InlineData("registers")]
    [InlineData("registers_embedded")]
    public void HubConfigAndEmbeddedConfigAgree(string family)
    {
        var folder = ZooPython.ConvertedFamily(family);
        var embedded = ModelLoader.ReadConfig(folder);
        var hub = ModelConfigReader.FromHubConfig(File.ReadAllText(Path.Combine(folder, "config.json")), "config.json");
        static object Layout(ModelConfig c) => (c.ImageSize, c.PatchSize, c.EmbedDim, c.Depth, c.NumHeads, c.MlpHidden, c.NumClasses,
            c.ClassToken, c.Distilled, c.RegTokens, c.NoEmbedClass, c.LayerScale, c.GlobalPool, c.FcNorm);
        Assert.Equal(Layout(embedded), Layout(hub));
    }

    private static void ExpectLayout(string family, ModelConfig c)
    {
        var expected = family switch
        {
            "vit" => (true, false, 0, false, false, GlobalPool.Token, false),
            "deit_distilled" => (true, true, 0, false, false, GlobalPool.Token, false),
            "avg_fc_norm" => (false, false, 0, false, false, GlobalPool.Avg, true),
            "mae" => (true, false, 0, false, false, GlobalPool.Avg, true),
            "deit3" => (true, false, 0, true, true, GlobalPool.Token, false),
            "registers" => (true, false, 4, true, true, GlobalPool.Token, false),
            "registers_embedded" => (true, false, 4, false, false, GlobalPool.Token, false),
            _ => throw new ArgumentException(family),
        };
        Assert.Equal(expected, (c.ClassToken, c.Distilled, c.RegTokens, c.NoEmbedClass, c.LayerScale, c.GlobalPool, c.FcNorm));
    }

    internal static float[] Images(int batch, int size, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, batch * 3 * size * size).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }
}
