using ToMe.Backends.Cpu;
using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;

namespace ToMe.Tests.Model;

/// <summary>
/// One forward pass serves batches of changing size (a server's batches are whatever was queued): a smaller batch after a
/// larger one reuses the larger workspace, allocates nothing big, and computes exactly what a fresh pass computes.
/// </summary>
public sealed class WorkspaceReuseTests
{
    private const int Large = 8;

    public static TheoryData<string> Strategies() => ["tome", "kth", "random", "tomato", "cis", "none"];

    private static ForwardOptions Options(string strategy) => new()
    {
        Schedule = MergeSchedule.Constant(40),
        Strategy = strategy switch
        {
            "kth" => MergeStrategy.Kth(2),
            "random" => MergeStrategy.Random(7),
            "tomato" => MergeStrategy.ToMato(0.3f),
            "cis" => MergeStrategy.Cis,
            "none" => MergeStrategy.None,
            _ => MergeStrategy.ToMe,
        },
    };

    private static float[] Images(ModelConfig config, int batch, int seed)
    {
        var random = new Random(seed);
        var images = new float[batch * 3 * config.ImageSize * config.ImageSize];
        for (int i = 0; i < images.Length; i++)
            images[i] = (float)(random.NextDouble() * 4 - 2);
        return images;
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void ASmallerBatchAfterALargerOneMatchesAFreshPass(string strategy)
    {
        var weights = Fixtures.Model("vit_p14_d3");
        var options = Options(strategy);
        using var backend = new CpuBackend();
        using var reused = new ForwardPass(backend, weights);
        reused.Run(Images(weights.Config, Large, 1), Large, options);
        foreach (int batch in new[] { 3, 1, Large - 1 })
        {
            var images = Images(weights.Config, batch, 10 + batch);
            var got = reused.Run(images, batch, options);
            using var fresh = new ForwardPass(backend, weights);
            var want = fresh.Run(images, batch, options);
            Assert.Equal(want.TokensPerLayer, got.TokensPerLayer);
            Assert.Equal(want.FinalTokens, got.FinalTokens);
            Assert.Equal(want.Groups, got.Groups);
            Assert.Equal(want.Size, got.Size);
            Assert.Equal(want.Logits, got.Logits); // bit-identical: stale rows beyond the batch must not leak in
        }
    }

    [Fact]
    public void ChangingBatchSizesAllocatesNoNewWorkspace()
    {
        var weights = Fixtures.Model("vit_p14_d3");
        var options = Options("tome");
        using var backend = new CpuBackend(maxThreads: 1);
        using var pass = new ForwardPass(backend, weights);
        var large = Images(weights.Config, Large, 1);
        var single = Images(weights.Config, 1, 2);
        pass.Run(large, Large, options);
        pass.Run(single, 1, options);

        // The ops' own temporaries are allocated per pass whatever the order; a new workspace (several MB even at batch 1)
        // would come on top of them each time the size changes.
        long Allocated(Action run)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 3; i++)
                run();
            return (GC.GetAllocatedBytesForCurrentThread() - before) / 3;
        }
        long steady = Allocated(() => pass.Run(large, Large, options)) + Allocated(() => pass.Run(single, 1, options));
        long alternating = Allocated(() =>
        {
            pass.Run(large, Large, options);
            pass.Run(single, 1, options);
        });
        Assert.True(alternating < steady + (512 << 10),
            $"a pair of passes at batch {Large} and 1 allocated {alternating >> 10} KiB alternating, {steady >> 10} KiB at steady sizes");
    }
}
