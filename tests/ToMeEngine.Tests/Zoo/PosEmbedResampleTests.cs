using System.Text.Json.Nodes;
using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Merging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Zoo;

/// <summary>
/// Position embeddings resampled at load time (timm's <c>resample_abs_pos_embed</c>): the C# bicubic against torch's
/// <c>F.interpolate</c>, and a model whose config asks for another image size than its pos_embed grid.
/// </summary>
public class PosEmbedResampleTests
{
    [Theory]
    [InlineData(4, 4, 6, 6, 5)]      // up
    [InlineData(7, 7, 4, 4, 3)]      // down (no antialias, as timm's default before 0.9 and the converter's)
    [InlineData(14, 14, 24, 24, 8)]  // patch 16 at 224 -> 384
    [InlineData(16, 16, 37, 37, 4)]  // patch 14 at 224 -> 518 (DINOv2)
    [InlineData(3, 5, 8, 2, 6)]      // non-square, mixed
    public void BicubicMatchesTorch(int inH, int inW, int outH, int outW, int channels)
    {
        ZooPython.Require();
        var random = new Random(inH * 100 + outH);
        var source = Enumerable.Range(0, inH * inW * channels).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var dir = ZooPython.NewFolder("interp");
        var input = Path.Combine(dir, "in.f32");
        File.WriteAllBytes(input, System.Runtime.InteropServices.MemoryMarshal.AsBytes(source.AsSpan()).ToArray());
        double[] Torch(string dtype)
        {
            var output = Path.Combine(dir, $"out.{dtype}");
            ZooPython.Run(ZooPython.Helper, "interpolate", input, output, $"{inH}", $"{inW}", $"{outH}", $"{outW}", $"{channels}", dtype);
            return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(File.ReadAllBytes(output)).ToArray();
        }

        var actual = new float[outH * outW * channels];
        PosEmbedResampler.Bicubic(source, inH, inW, outH, outW, channels, actual);
        // torch in float64 is the same algorithm without rounding: agreement to our float32 output's rounding.
        Close.AssertAll(Torch("f64"), actual, 1e-6, 1e-6, $"bicubic {inH}x{inW} -> {outH}x{outW} vs torch float64");
        // torch in float32 (timm, the converter) carries its own rounding of a few 1e-6 on values of magnitude 2.
        Close.AssertAll(Torch("f32"), actual, 2e-5, 0, $"bicubic {inH}x{inW} -> {outH}x{outW} vs torch float32");
    }

    /// <summary>
    /// A hub-layout folder (config.json decides, as for files from the hub) whose config says 48 px while the stored
    /// pos_embed is for 32 px: the engine resamples at load like the converter's --img-size (torch), keeps the prefix rows,
    /// and the model runs at 48 px against the reference.
    /// </summary>
    [Theory]
    [InlineData("vit")]        // the class token's row is kept out and copied
    [InlineData("registers")]  // no_embed_class: the grid only
    [InlineData("registers_embedded")]
    public void LoadResamplesToTheConfigsImageSize(string family)
    {
        var converted = ZooPython.ConvertedFamily(family);
        var dir = ZooPython.NewFolder($"resize-{family}");
        ZooPython.Run(ZooPython.Helper, "strip", Path.Combine(converted, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
        var hub = JsonNode.Parse(File.ReadAllText(Path.Combine(converted, "config.json")))!;
        hub["model_args"]!["img_size"] = 48;
        hub["pretrained_cfg"]!["input_size"] = new JsonArray(3, 48, 48);
        File.WriteAllText(Path.Combine(dir, "config.json"), hub.ToJsonString());

        var weights = ModelLoader.Load(dir);
        Assert.Equal(48, weights.Config.ImageSize);
        Assert.Equal(6, weights.Config.GridSize);

        // torch's resampling of the same checkpoint, by the converter.
        var byTorch = ZooPython.NewFolder($"resize-{family}-torch");
        ZooPython.Run(ZooPython.Converter, Path.Combine(converted, "model.safetensors"), "-o", Path.Combine(byTorch, "m"), "--num-heads", "2", "--img-size", "48");
        var expected = ModelLoader.Load(Path.Combine(byTorch, "m"));
        Assert.Equal(expected.Config.PosEmbedTokens * expected.Config.EmbedDim, weights.PosEmbed.Length);
        Close.AssertAll(expected.PosEmbed, weights.PosEmbed, 2e-5, 0, $"{family} pos_embed 4x4 -> 6x6 vs torch float32");

        const int batch = 1, r = 5;
        var input = ZooRoundTripTests.Images(batch, 48, seed: 9);
        using var backend = new CpuBackend();
        using var pass = new ForwardPass(backend, weights);
        var result = pass.Run(input, batch, new ForwardOptions { Schedule = MergeSchedule.Constant(r) });
        var matcher = new ReferenceToMe(r, weights.Config.PrefixTokens);
        var (logits, groups, _, _) = new ReferenceVit(weights).Run(input, 0, propAttn: true, matcher.Merge);
        Assert.True(groups.SequenceEqual(result.Groups), $"{family} at 48 px: groups differ (margin {matcher.Margin:E2})");
        Close.AssertAll(logits, result.Logits, 1e-4, 0, $"{family} at 48 px logits");
    }

    [Fact]
    public void APosEmbedThatFitsNoSquareGridIsRefusedByName()
    {
        var converted = ZooPython.ConvertedFamily("registers");
        var dir = ZooPython.NewFolder("bad-grid");
        ZooPython.Run(ZooPython.Helper, "strip", Path.Combine(converted, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
        var hub = JsonNode.Parse(File.ReadAllText(Path.Combine(converted, "config.json")))!;
        // Read as giving the 5 prefix tokens positions too, the 16 stored rows leave 11 for the patches: no grid to resample.
        hub["model_args"]!["no_embed_class"] = false;
        File.WriteAllText(Path.Combine(dir, "config.json"), hub.ToJsonString());
        var error = Assert.Throws<ToMe.Weights.InvalidModelException>(() => ModelLoader.Load(dir));
        Assert.Contains("tensor 'pos_embed' has shape [1, 16, 64], expected [1, 21, 64]", error.Message);
    }
}
