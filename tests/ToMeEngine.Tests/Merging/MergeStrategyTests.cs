using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using static ToMe.Tests.Merging.MergeVariantReferenceTests;

namespace ToMe.Tests.Merging;

public class MergeStrategyTests
{
    [Theory]
    [InlineData("tome", null, null, null, "tome")]
    [InlineData("KTH", 3, null, null, "kth(k=3)")]
    [InlineData("random", null, 42L, null, "random(seed=42)")]
    [InlineData("tomato", null, null, 0.9, "tomato(threshold=0.9)")]
    [InlineData("cis", null, null, null, "cis")]
    [InlineData("none", null, null, null, "none")]
    public void ParsesEveryStrategy(string name, int? k, long? seed, double? threshold, string expected) =>
        Assert.Equal(expected, MergeStrategy.Parse(name, k, seed, threshold).ToString());

    [Theory]
    [InlineData("kth", null, null, null, "needs --k")]
    [InlineData("kth", 1, null, null, "k >= 2")]
    [InlineData("random", null, null, null, "needs --seed")]
    [InlineData("tomato", null, null, null, "needs --threshold")]
    [InlineData("tomato", null, null, double.NaN, "finite")]
    [InlineData("tome", 2, null, null, "does not take --k")]
    [InlineData("kth", 2, 5L, null, "does not take --seed")]
    [InlineData("bipartite", null, null, null, "expected tome, kth, random, tomato, cis or none")]
    public void RejectsMissingOrStrayParameters(string name, int? k, long? seed, double? threshold, string fragment)
    {
        var error = Assert.Throws<FormatException>(() => MergeStrategy.Parse(name, k, seed, threshold));
        Assert.Contains(fragment, error.Message);
    }

    [Fact]
    public void NoneIgnoresTheSchedule()
    {
        var (weights, input, batch) = Load("vit_p14_d3");
        var none = Run(weights, input, batch, new ForwardOptions { Strategy = MergeStrategy.None, Schedule = MergeSchedule.Constant(13) });
        var r0 = Run(weights, input, batch, new ForwardOptions());
        Assert.Equal(r0.Logits, none.Logits);
        Assert.Equal([257, 257, 257], none.TokensPerLayer);
    }

    [Fact]
    public void KthPlanDividesEveryLayerAndStopsBeforeThePrefixIsLost()
    {
        var plan = MergeStrategy.Kth(3).Plan(MergeSchedule.None, 6, 198, 2)!.Value;
        Assert.Equal([198, 66, 22, 7, 2, 2], plan.TokensPerLayer);
        Assert.Equal(2, plan.FinalTokens);
        Assert.Null(MergeStrategy.ToMato(0.5f).Plan(MergeSchedule.None, 6, 198, 2));
    }

    [Fact]
    public void KthDropsTheTailFromTheGroups()
    {
        var (weights, input, batch) = Load("vit_p14_d3");
        var result = Run(weights, input, batch, new ForwardOptions { Strategy = MergeStrategy.Kth(2) });
        Assert.Equal([257, 128, 64], result.TokensPerLayer);
        Assert.Equal(32, result.FinalTokens);
        // 257 = 2·128 + 1: the last original token is dropped in block 0; nothing else is.
        for (int b = 0; b < batch; b++)
        {
            Assert.Equal(-1, result.Groups[b * 257 + 256]);
            Assert.All(result.Groups.AsSpan(b * 257, 256).ToArray(), g => Assert.InRange(g, 0, 31));
            Assert.Equal(256f, result.Size.AsSpan(b * 32, 32).ToArray().Sum());
        }
    }

    [Fact]
    public void RandomIsReproducibleFromItsSeedAndKeepsTheClassTokenFirstAndAlone()
    {
        var (weights, input, batch) = Load("vit_p14_d3");
        ForwardOptions Options(long seed) => new() { Strategy = MergeStrategy.Random(seed), Schedule = MergeSchedule.Constant(60) };
        var first = Run(weights, input, batch, Options(1));
        var again = Run(weights, input, batch, Options(1));
        var other = Run(weights, input, batch, Options(2));
        Assert.Equal(first.Groups, again.Groups);
        Assert.Equal(first.Logits, again.Logits);
        Assert.NotEqual(first.Groups, other.Groups);
        Assert.Equal([257, 197, 137], first.TokensPerLayer);
        foreach (var result in new[] { first, other })
        {
            for (int b = 0; b < batch; b++)
            {
                var groups = result.Groups.AsSpan(b * 257, 257).ToArray();
                Assert.Equal(0, groups[0]);
                Assert.DoesNotContain(0, groups[1..]);
                Assert.Equal(1f, result.Size[b * result.FinalTokens]);
            }
        }
    }

    [Fact]
    public void RandomDrawsDependOnTheImageNotOnItsPlaceInTheBatch()
    {
        var (weights, input, _) = Load("deit_t4_distilled");
        int n = input.Length / 2;
        var swapped = input[n..].Concat(input[..n]).ToArray();
        var options = new ForwardOptions { Strategy = MergeStrategy.Random(5), Schedule = MergeSchedule.Constant(30) };
        var pair = Run(weights, input, 2, options);
        var reversed = Run(weights, swapped, 2, options);
        var alone = Run(weights, input[n..], 1, options);
        int t0 = weights.Config.Tokens, k = weights.Config.NumClasses;
        Assert.Equal(pair.Groups[t0..], reversed.Groups[..t0]);
        Assert.Equal(pair.Groups[t0..], alone.Groups);
        Close.AssertAll(pair.Logits[k..], alone.Logits, 1e-5, 0, "image 1 alone vs in a batch");
        // The distillation token is protected like the class token.
        Assert.Equal(1, alone.Groups[1]);
        Assert.DoesNotContain(1, alone.Groups.Where((_, i) => i != 1));
    }

    [Fact]
    public void CisWithEqualScoresIsThePlainAverageOfEachGroup()
    {
        // 7 tokens, r = 2: A = {0,2,4,6} (0 is the class token), B = {1,3,5}.
        const int tokens = 7, channels = 5, r = 2;
        var random = new Random(3);
        var x = Enumerable.Range(0, tokens * channels).Select(_ => (float)random.NextDouble() * 2 - 1).ToArray();
        var sizes = new float[] { 1, 3, 2, 5, 1, 4, 2 };
        int[] order = [2, 3, 0, 1];       // sources: A₂ (token 4), A₃ (token 6); kept A₀, A₁ in order
        int[] bestIndex = [0, 2, 0, 0];   // token 4 → B₀ (token 1), token 6 → B₀ (token 1)
        using var cpu = new CpuBackend(1);
        float[] Merge(float[]? weight)
        {
            var xOut = cpu.AllocateFloat((tokens - r) * channels);
            var sizeOut = cpu.AllocateFloat(tokens - r);
            var groupsOut = cpu.AllocateInt(tokens);
            var w = weight is null ? null : Buffer(cpu, weight);
            cpu.Merge(Buffer(cpu, x), Buffer(cpu, sizes), IntBuffer(cpu, Enumerable.Range(0, tokens).ToArray()), IntBuffer(cpu, order),
                IntBuffer(cpu, bestIndex), w, 1, tokens, channels, tokens, r, 1, xOut, sizeOut, groupsOut);
            Assert.Equal(new float[] { 1, 2, 6, 5, 4 }, CpuBackend.F(sizeOut).AsSpan().ToArray()); // sizes still add up
            return CpuBackend.F(xOut).AsSpan().ToArray();
        }
        var equal = Merge(Enumerable.Repeat(0.25f, tokens).ToArray());
        // Output order: kept A (tokens 0, 2), then B (tokens 1, 3, 5); token 1's group is {1, 4, 6}.
        int[][] members = [[0], [2], [1, 4, 6], [3], [5]];
        var expected = new double[equal.Length];
        for (int j = 0; j < members.Length; j++)
            for (int ch = 0; ch < channels; ch++)
                expected[j * channels + ch] = members[j].Average(t => (double)x[t * channels + ch]);
        Close.AssertAll(expected, equal, 1e-6, 1e-6, "equal scores");

        // All-zero scores fall back to the size-weighted merge.
        Assert.Equal(Merge(null), Merge(new float[tokens]));
    }

    [Fact]
    public void CisRunsOnAModelAndNeedsAClassToken()
    {
        var (weights, input, batch) = Load("vit_p14_d3");
        var options = new ForwardOptions { Strategy = MergeStrategy.Cis, Schedule = MergeSchedule.Constant(40) };
        var cis = Run(weights, input, batch, options);
        var tome = Run(weights, input, batch, options with { Strategy = MergeStrategy.ToMe });
        Assert.Equal(tome.TokensPerLayer, cis.TokensPerLayer);
        Assert.All(cis.Logits, v => Assert.True(float.IsFinite(v)));
        Assert.NotEqual(tome.Logits, cis.Logits);
        for (int b = 0; b < batch; b++)
            Assert.Equal(257f, cis.Size.AsSpan(b * cis.FinalTokens, cis.FinalTokens).ToArray().Sum());

        if (SharedData.Root is null || !File.Exists(Path.Combine(SharedData.Root, "fixtures", "vit_avg_d3.safetensors")))
            return;
        var avg = Fixtures.Model("vit_avg_d3");
        var image = new float[3 * avg.Config.ImageSize * avg.Config.ImageSize];
        var error = Assert.Throws<ArgumentException>(() => Run(avg, image, 1, options));
        Assert.Contains("no class token", error.Message);
    }

    internal static Backends.DeviceBuffer Buffer(CpuBackend cpu, float[] values)
    {
        var buffer = cpu.AllocateFloat(values.Length);
        cpu.Upload(values, buffer);
        return buffer;
    }

    internal static Backends.DeviceBuffer IntBuffer(CpuBackend cpu, int[] values)
    {
        var buffer = cpu.AllocateInt(values.Length);
        cpu.Upload(values, buffer);
        return buffer;
    }
}
