using ToMe.Backends.Cpu;
using ToMe.Model;
using ToMe.Tests.Support;

namespace ToMe.Tests.Model;

/// <summary>
/// A multi-threaded CPU backend runs a batch's images one per thread (each image's ops on its own thread), the remainder
/// as one batch: every image's result is bit-identical to what it gets run alone on one thread, in order.
/// </summary>
public sealed class ImageConcurrencyTests
{
    public static TheoryData<string, int, int> Cases() => new()
    {
        { "tome", 3, 7 },  // two full rounds of 3, then 1 image as a batch
        { "tome", 2, 5 },
        { "tome", 4, 4 },
        { "kth", 3, 5 },
        { "random", 3, 5 },
        { "cis", 2, 3 },
        { "none", 2, 3 },
        { "tomato", 2, 4 }, // runs as one batch: every image is padded to the batch's largest token count
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryImageMatchesItsSingleThreadedRunAlone(string strategy, int threads, int batch)
    {
        var weights = Fixtures.Model("vit_p14_d3");
        var config = weights.Config;
        int perImage = 3 * config.ImageSize * config.ImageSize;
        var random = new Random(batch * 31 + threads);
        var images = new float[batch * perImage];
        for (int i = 0; i < images.Length; i++)
            images[i] = (float)(random.NextDouble() * 4 - 2);
        var options = WorkspaceReuseTests.Options(strategy) with { ReturnTokens = strategy != "tomato" };

        using var parallel = new CpuBackend(maxThreads: threads);
        Assert.Equal(threads, parallel.ImageConcurrency);
        using var pass = new ForwardPass(parallel, weights);
        ForwardResult got = pass.Run(images, batch, options);
        got = pass.Run(images, batch, options); // again, with the per-image workspaces and scratch reused

        using var serial = new CpuBackend(maxThreads: 1);
        Assert.Equal(1, serial.ImageConcurrency);
        using var alone = new ForwardPass(serial, weights);
        if (strategy == "tomato")
        {
            var want = alone.Run(images, batch, options);
            Assert.Equal(want.Logits, got.Logits);
            Assert.Equal(want.Groups, got.Groups);
            return;
        }
        int classes = config.NumClasses, t0 = config.Tokens, t = got.FinalTokens, c = config.EmbedDim;
        for (int b = 0; b < batch; b++)
        {
            var want = alone.Run(images.AsSpan(b * perImage, perImage), 1, options);
            Assert.Equal(want.TokensPerLayer, got.TokensPerLayer);
            Assert.Equal(want.FinalTokens, got.FinalTokens);
            Assert.Equal(want.Logits, got.Logits.AsSpan(b * classes, classes).ToArray());
            Assert.Equal(want.Groups, got.Groups.AsSpan(b * t0, t0).ToArray());
            Assert.Equal(want.Size, got.Size.AsSpan(b * t, t).ToArray());
            Assert.Equal(want.Tokens, got.Tokens!.AsSpan(b * t * c, t * c).ToArray());
        }
    }
}
