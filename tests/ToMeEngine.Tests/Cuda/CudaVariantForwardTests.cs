using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cuda;

/// <summary>
/// Every merge variant through the whole forward pass on the CUDA backend against the CPU backend on the fixture
/// models: the same merge decisions (assignments per layer, ToMeCIS's matches), token counts, groups and sizes, and
/// logits within 1e-3.
/// </summary>
public class CudaVariantForwardTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var model in Fixtures.Shipped)
            foreach (var strategy in new[] { "kth2", "random7", "tomato0.9", "cis" })
                data.Add(model, strategy);
        return data;
    }

    private static ForwardOptions Options(string strategy) => strategy switch
    {
        "kth2" => new ForwardOptions { Strategy = MergeStrategy.Kth(2) },
        "random7" => new ForwardOptions { Strategy = MergeStrategy.Random(7), Schedule = MergeSchedule.Constant(8) },
        "tomato0.9" => new ForwardOptions { Strategy = MergeStrategy.ToMato(0.9f) },
        "cis" => new ForwardOptions { Strategy = MergeStrategy.Cis, Schedule = MergeSchedule.Constant(8) },
        _ => throw new ArgumentException(strategy),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void VariantOnCudaMatchesCpu(string model, string strategy)
    {
        using var gpu = BackendPair.CreateGpu();
        using var cpu = new CpuBackend();
        var weights = Fixtures.Model(model);
        using var golden = SafeTensorsFile.Open(Fixtures.GoldenPath(model));
        var input = golden.ReadFloat32("input");
        int batch = golden.Get("input").Shape[0];
        if (strategy == "cis" && !weights.Config.ClassToken)
            Assert.Skip($"{model} has no class token");
        var options = Options(strategy);

        var (expected, expectedDecisions) = Run(cpu, weights, input, batch, options);
        var (actual, actualDecisions) = Run(gpu, weights, input, batch, options);

        string what = $"{model} {strategy}";
        Assert.Equal(expected.TokensPerLayer, actual.TokensPerLayer);
        Assert.Equal(expected.FinalTokens, actual.FinalTokens);
        Assert.Equal(expectedDecisions.Keys.Order(), actualDecisions.Keys.Order());
        foreach (var (key, decision) in expectedDecisions)
            Assert.True(decision.SequenceEqual(actualDecisions[key]), $"{what}: {key} differs");
        Assert.NotEmpty(expectedDecisions);
        Assert.Equal(expected.Groups, actual.Groups);
        Assert.Equal(expected.Size, actual.Size);
        Close.AssertAll(expected.Logits, actual.Logits, 1e-3, 0, what + " logits (cuda vs cpu)");
    }

    private static (ForwardResult Result, Dictionary<string, int[]> Decisions) Run(IBackend backend, ModelWeights weights, float[] input, int batch, ForwardOptions options)
    {
        var decisions = new Dictionary<string, int[]>();
        var trace = new ForwardTrace
        {
            OnAssign = (l, dest) => decisions[$"layer {l} dest"] = dest,
            OnMerge = (l, src, dst) => decisions[$"layer {l} src/dst"] = [.. src, .. dst],
        };
        using var pass = new ForwardPass(backend, weights);
        return (pass.Run(input, batch, options, trace), decisions);
    }

    /// <summary>ToMato's per-image component counts: image 0 alone and in a batch of three gets the same tokens (padding aside).</summary>
    [Theory]
    [InlineData("vit_p14_d3")]
    [InlineData("deit_t4_distilled")]
    public void ToMatoImageAloneMatchesImageInBatchOfThree(string model)
    {
        using var gpu = BackendPair.CreateGpu();
        var weights = Fixtures.Model(model);
        using var golden = SafeTensorsFile.Open(Fixtures.GoldenPath(model));
        var input = golden.ReadFloat32("input");
        int batch = golden.Get("input").Shape[0];
        int image = input.Length / batch, classes = weights.Config.NumClasses, t0 = weights.Config.Tokens;
        float[] three = [.. input.AsSpan(0, image), .. Gpu.Random(image, seed: 21), .. input.AsSpan(0, image)];
        var options = new ForwardOptions { Strategy = MergeStrategy.ToMato(0.5f) };
        using var pass = new ForwardPass(gpu, weights);
        var alone = pass.Run(input.AsSpan(0, image), 1, options);
        var batched = pass.Run(three, 3, options);
        Assert.Equal(alone.Groups, batched.Groups.AsSpan(0, t0).ToArray());
        Assert.Equal(alone.Groups, batched.Groups.AsSpan(2 * t0, t0).ToArray());
        int kept = alone.FinalTokens;
        Assert.Equal(alone.Size, batched.Size.AsSpan(0, kept).ToArray());
        Assert.All(batched.Size.AsSpan(kept, batched.FinalTokens - kept).ToArray(), s => Assert.Equal(0f, s));
        Close.AssertAll(alone.Logits, batched.Logits.AsSpan(0, classes), 1e-5, 1e-5, $"{model}: ToMato image 0 alone vs in a batch of 3");
    }
}
