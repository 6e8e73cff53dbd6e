using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Model;

/// <summary>The pretrained ViT-Ti against timm + official ToMe's float32 logits on 8 ImageNet photos.</summary>
public class RealModelTests
{
    public const string VitTiny = "models/vit_tiny_patch16_224.augreg_in21k_ft_in1k";

    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    public void VitTinyReproducesReferenceLogits(int r)
    {
        var modelDir = SharedData.Require(VitTiny);
        var goldenPath = SharedData.Require("reference/vit_tiny_8.golden.safetensors");
        var weights = ModelLoader.Load(modelDir);
        Assert.Equal("vit_tiny_patch16_224", weights.Config.Architecture);
        Assert.Equal(1000, weights.Config.LabelNames!.Count);

        using var golden = SafeTensorsFile.Open(goldenPath);
        var input = golden.ReadFloat32("input");
        int batch = golden.Get("input").Shape[0];
        var expected = golden.ReadFloat32($"r{r}.logits");

        using var backend = new CpuBackend();
        using var pass = new ForwardPass(backend, weights);
        var result = pass.Run(input, batch, new ForwardOptions { Schedule = MergeSchedule.Constant(r) });

        Close.AssertAll(expected, result.Logits, atol: 1e-3, rtol: 0, what: $"ViT-Ti r={r} logits");
        for (int b = 0; b < batch; b++)
            Assert.Equal(Top1.ArgMax(expected.AsSpan(b * 1000, 1000)), Top1.ArgMax(result.Logits.AsSpan(b * 1000, 1000)));
        if (r == 13)
            Assert.Equal(197 - 12 * 13, result.FinalTokens);
    }
}
