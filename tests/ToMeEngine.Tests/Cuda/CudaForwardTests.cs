using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cuda;

/// <summary>The whole forward pass on the CUDA backend: every golden fixture case, determinism, batch independence.</summary>
public class CudaForwardTests
{
    public static TheoryData<string, string> Cases() => Fixtures.AllCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void CudaMatchesTimmAndOfficialToMe(string model, string caseKey)
    {
        if (caseKey == "(absent)")
            Fixtures.Folder(model); // skips, naming what is missing
        using var gpu = BackendPair.CreateGpu();
        GoldenCase.Check(gpu, model, caseKey, logitsTolerance: 1e-3, hiddenAtol: 1e-3, hiddenRtol: 1e-4);
    }

    [Theory]
    [InlineData("vit_p14_d3")]
    [InlineData("deit_t4_distilled")]
    public void TwoRunsAreBitIdentical(string model)
    {
        using var gpu = BackendPair.CreateGpu();
        var (input, batch) = GoldenInput(model);
        using var pass = new ForwardPass(gpu, Fixtures.Model(model));
        var options = new ForwardOptions { Schedule = MergeSchedule.Constant(13) };
        var first = pass.Run(input, batch, options);
        var second = pass.Run(input, batch, options);
        Assert.Equal(first.Logits, second.Logits);
        Assert.Equal(first.Size, second.Size);
        Assert.Equal(first.Groups, second.Groups);
    }

    /// <summary>
    /// Image 0 alone and in a batch of three gets the same merges, groups and sizes. Every kernel of the engine computes
    /// a token from its own image only, in a fixed order; cuBLAS may pick another GEMM algorithm for another row count,
    /// so logits are held to 1e-5 rather than to the bit.
    /// </summary>
    [Theory]
    [InlineData("vit_p14_d3")]
    [InlineData("deit_t4_distilled")]
    public void ImageAloneMatchesImageInBatchOfThree(string model)
    {
        using var gpu = BackendPair.CreateGpu();
        var weights = Fixtures.Model(model);
        var (input, batch) = GoldenInput(model);
        int image = input.Length / batch, classes = weights.Config.NumClasses, t0 = weights.Config.Tokens;
        var third = Gpu.Random(image, seed: 20);
        float[] three = [.. input.AsSpan(0, image), .. input.AsSpan(image, image), .. third];
        var options = new ForwardOptions { Schedule = MergeSchedule.Ramp(16, -0.5) };
        using var pass = new ForwardPass(gpu, weights);

        var aloneMerges = new Dictionary<int, int[]>();
        var alone = pass.Run(input.AsSpan(0, image), 1, options, new ForwardTrace { OnMerge = (l, s, d) => aloneMerges[l] = [.. s, .. d] });
        var batchedMerges = new Dictionary<int, (int[] Src, int[] Dst)>();
        var batched = pass.Run(three, 3, options, new ForwardTrace { OnMerge = (l, s, d) => batchedMerges[l] = (s, d) });

        Assert.Equal(aloneMerges.Keys.Order(), batchedMerges.Keys.Order());
        foreach (var (layer, merges) in aloneMerges)
        {
            int r = merges.Length / 2;
            int[] batchedImage0 = [.. batchedMerges[layer].Src.AsSpan(0, r), .. batchedMerges[layer].Dst.AsSpan(0, r)];
            Assert.Equal(merges, batchedImage0);
        }
        Assert.Equal(alone.Groups, batched.Groups.AsSpan(0, t0).ToArray());
        Assert.Equal(alone.Size, batched.Size.AsSpan(0, alone.FinalTokens).ToArray());
        Close.AssertAll(alone.Logits, batched.Logits.AsSpan(0, classes), 1e-5, 1e-5, $"{model}: image 0 alone vs in a batch of 3");
    }

    [Fact]
    public void CudaFollowsCpuBlockByBlock()
    {
        using var gpu = BackendPair.CreateGpu();
        using var cpu = new CpuBackend();
        const string model = "deit_t4_distilled";
        var (input, batch) = GoldenInput(model);
        var weights = Fixtures.Model(model);
        var options = new ForwardOptions { Schedule = MergeSchedule.Constant(20) };
        var expected = Trace(cpu, weights, input, batch, options);
        var actual = Trace(gpu, weights, input, batch, options);
        Close.AssertAll(expected[-1], actual[-1], 1e-5, 1e-5, "embedding");
        for (int l = 0; l < weights.Config.Depth; l++)
            Close.AssertAll(expected[l], actual[l], 1e-4, 1e-4, $"block {l}");
    }

    private static Dictionary<int, float[]> Trace(IBackend backend, ModelWeights weights, float[] input, int batch, ForwardOptions options)
    {
        var states = new Dictionary<int, float[]>();
        using var pass = new ForwardPass(backend, weights);
        pass.Run(input, batch, options, new ForwardTrace { OnEmbed = e => states[-1] = e, OnBlock = (l, h) => states[l] = h });
        return states;
    }

    private static (float[] Input, int Batch) GoldenInput(string model)
    {
        using var golden = SafeTensorsFile.Open(Fixtures.GoldenPath(model));
        return (golden.ReadFloat32("input"), golden.Get("input").Shape[0]);
    }
}
