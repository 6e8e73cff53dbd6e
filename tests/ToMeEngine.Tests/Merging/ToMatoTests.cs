using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using static ToMe.Tests.Merging.MergeVariantReferenceTests;

namespace ToMe.Tests.Merging;

public class ToMatoTests
{
    [Fact]
    public void AThresholdNothingPassesEqualsNoMerging()
    {
        var (weights, input, batch) = Load("deit_t4_distilled");
        var tomato = Run(weights, input, batch, new ForwardOptions { Strategy = MergeStrategy.ToMato(1.5f) });
        var r0 = Run(weights, input, batch, new ForwardOptions());
        Close.AssertAll(r0.Logits, tomato.Logits, 1e-5, 0, "tomato with threshold 1.5 vs r = 0");
        Assert.Equal(r0.Groups, tomato.Groups);
        Assert.All(tomato.Size, s => Assert.Equal(1f, s));
    }

    [Fact]
    public void ComponentsDoNotDependOnTheOrderEdgesArrive()
    {
        // A 12×12 grid with a random edge set; every shuffle of the edges must give the same numbering.
        const int n = 12;
        var random = new Random(11);
        var edges = new List<(int, int)>();
        for (int i = 0; i < n * n; i++)
        {
            if (i % n + 1 < n && random.NextDouble() < 0.45)
                edges.Add((i, i + 1));
            if (i + n < n * n && random.NextDouble() < 0.45)
                edges.Add((i + n, i)); // either direction
        }
        var expected = new int[n * n];
        int count = TokenComponents.Number(n * n, edges, expected);
        Assert.InRange(count, 2, n * n - 1);
        for (int trial = 0; trial < 20; trial++)
        {
            var shuffled = edges.OrderBy(_ => random.Next()).Select(e => random.Next(2) == 0 ? e : (e.Item2, e.Item1)).ToList();
            var component = new int[n * n];
            Assert.Equal(count, TokenComponents.Number(n * n, shuffled, component));
            Assert.Equal(expected, component);
        }
        // Components are numbered in order of their smallest node: the first time each number appears, it is the next one.
        int next = 0;
        foreach (int c in expected)
            if (c == next)
                next++;
            else
                Assert.InRange(c, 0, next - 1);
        Assert.Equal(count, next);
    }

    [Fact]
    public void EachImageGetsWhatItGetsAloneWhateverTheBatch()
    {
        var (weights, input, _) = Load("vit_p14_d3");
        int n = input.Length / 2, t0 = weights.Config.Tokens, k = weights.Config.NumClasses;
        var options = new ForwardOptions { Strategy = MergeStrategy.ToMato(0.35f) };
        var alone = new[] { Run(weights, input[..n], 1, options), Run(weights, input[n..], 1, options) };
        Assert.NotEqual(alone[0].FinalTokens, alone[1].FinalTokens); // the test needs images with different counts

        // Three images, the smaller one in the middle: every image is padded to the batch's largest count.
        var batch = Run(weights, [.. input[n..], .. input[..n], .. input[n..]], 3, options);
        Assert.Equal(Math.Max(alone[0].FinalTokens, alone[1].FinalTokens), batch.FinalTokens);
        Assert.Equal(batch.FinalTokens, batch.TokensPerLayer[1]);
        foreach (var (slot, image) in new[] { (0, 1), (1, 0), (2, 1) })
        {
            var own = alone[image];
            Assert.Equal(own.Groups, batch.Groups[(slot * t0)..((slot + 1) * t0)]);
            Close.AssertAll(own.Logits, batch.Logits.AsSpan(slot * k, k), 1e-4, 0, $"image {image} in slot {slot}");
            var size = batch.Size.AsSpan(slot * batch.FinalTokens, batch.FinalTokens).ToArray();
            Assert.Equal(own.Size, size[..own.FinalTokens]);
            Assert.All(size[own.FinalTokens..], s => Assert.Equal(0f, s)); // padding
            Assert.Equal(t0, size.Sum());
        }
        // The class token is untouched and first; every patch is in a component after it.
        Assert.All(Enumerable.Range(0, 3), b => Assert.Equal(0, batch.Groups[b * t0]));
        Assert.All(batch.Groups.Where((_, i) => i % t0 != 0), g => Assert.True(g >= 1));
    }

    [Fact]
    public void AveragePoolingIgnoresThePadding()
    {
        if (SharedData.Root is null || !File.Exists(Path.Combine(SharedData.Root, "fixtures", "vit_avg_d3.safetensors")))
            Assert.Skip("needs ../shared/fixtures/vit_avg_d3.safetensors");
        var (weights, input, _) = Load("vit_avg_d3");
        int n = input.Length / 2, k = weights.Config.NumClasses;
        var options = new ForwardOptions { Strategy = MergeStrategy.ToMato(0.3f) };
        var pair = Run(weights, input, 2, options);
        for (int b = 0; b < 2; b++)
        {
            var alone = Run(weights, input[(b * n)..((b + 1) * n)], 1, options);
            Close.AssertAll(alone.Logits, pair.Logits.AsSpan(b * k, k), 1e-4, 0, $"avg-pool image {b}");
        }
    }
}
