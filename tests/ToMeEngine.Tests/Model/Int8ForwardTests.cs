using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Model;

/// <summary>
/// The whole forward pass with int8 Linear layers: near the float64 references (tolerances state int8's precision),
/// and deterministic — the same bits on every kernel family, thread count and batch composition.
/// </summary>
public class Int8ForwardTests
{
    public static TheoryData<string, string> Cases() => Fixtures.AllCases();

    /// <summary>
    /// int8 rounds every Linear input and weight to 8 bits, so logits move by about 1% of their range: measured at most 2.6%
    /// of the largest |logit| on these fixtures, at every schedule. The tolerance is 5%, and the top-1 class must hold.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void FixtureCasesStayNearTheReference(string model, string caseKey)
    {
        using var opened = Fixtures.Open(model, caseKey);
        var (weights, golden, fixture, input) = (opened.Weights, opened.Golden, opened.Case, opened.Input);
        int batch = opened.Batch, classes = weights.Config.NumClasses;
        using var backend = new CpuBackend(2);
        using var pass = new ForwardPass(backend, weights, Precision.Int8);
        var result = pass.Run(input, batch, opened.Options);

        var expected = golden.ReadFloat64($"{caseKey}.logits_f64");
        double largest = expected.Max(Math.Abs);
        Close.AssertAll(expected, result.Logits, atol: 0.05 * largest, rtol: 0, what: $"{model} {caseKey} int8 logits");
        for (int b = 0; b < batch; b++)
            Assert.Equal(Top1.ArgMax(expected.AsSpan(b * classes, classes)), Top1.ArgMax(result.Logits.AsSpan(b * classes, classes)));
        Assert.Equal(fixture.TokensPerLayer, result.TokensPerLayer);
    }

    private static ForwardResult Run(Int8Path path, int threads, float[] images, int batch, ForwardOptions options)
    {
        using var backend = new CpuBackend(threads, path);
        using var pass = new ForwardPass(backend, Fixtures.Model("vit_p14_d3"), Precision.Int8);
        Assert.Equal(Precision.Int8, pass.Precision);
        return pass.Run(images, batch, options);
    }

    [Fact]
    public void EveryKernelFamilyThreadCountAndBatchGivesTheSameBits()
    {
        var config = Fixtures.Model("vit_p14_d3").Config;
        int s = config.ImageSize, per = 3 * s * s, classes = config.NumClasses;
        var images = Cpu.Reference.Random(3 * per, 77);
        var options = new ForwardOptions { Schedule = MergeSchedule.Constant(13) };
        var first = Run(Int8Gemm.BestPath, 2, images, 3, options);
        foreach (var path in Enum.GetValues<Int8Path>().Where(Int8Gemm.IsSupported))
            foreach (int threads in new[] { 1, 2 })
            {
                var other = Run(path, threads, images, 3, options);
                Assert.True(first.Logits.AsSpan().SequenceEqual(other.Logits), $"{path}, {threads} threads: logits differ from {Int8Gemm.BestPath}");
                Assert.Equal(first.Groups, other.Groups);
                Assert.Equal(first.Size, other.Size);
            }
        // Activations are quantized per token, so an image's result does not depend on the batch it is in.
        var alone = Run(Int8Gemm.BestPath, 2, images[per..(2 * per)], 1, options);
        Assert.True(alone.Logits.AsSpan().SequenceEqual(first.Logits.AsSpan(classes, classes)), "image 1 alone differs from image 1 in a batch of 3");
    }

    [Fact]
    public void VitTinyOnReferenceImagesKeepsEveryTop1()
    {
        // r = 0: measured max |Δlogit| 0.38 against timm's float32 logits on these 8 photos (0.55 over the 500 samples).
        var weights = ModelLoader.Load(SharedData.Require(RealModelTests.VitTiny));
        using var golden = SafeTensorsFile.Open(SharedData.Require("reference/vit_tiny_8.golden.safetensors"));
        var input = golden.ReadFloat32("input");
        int batch = golden.Get("input").Shape[0];
        var expected = golden.ReadFloat32("r0.logits");
        using var backend = new CpuBackend();
        using var pass = new ForwardPass(backend, weights, Precision.Int8);
        var result = pass.Run(input, batch, new ForwardOptions());
        Close.AssertAll(expected, result.Logits, atol: 0.8, rtol: 0, what: "ViT-Ti int8 r=0 logits");
        for (int b = 0; b < batch; b++)
            Assert.Equal(Top1.ArgMax(expected.AsSpan(b * 1000, 1000)), Top1.ArgMax(result.Logits.AsSpan(b * 1000, 1000)));
    }
}
