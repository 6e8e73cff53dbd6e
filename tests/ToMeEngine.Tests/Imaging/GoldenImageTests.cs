using ToMe.Imaging;

namespace ToMe.Tests.Imaging;

/// <summary>Decoding and preprocessing against PIL 9.4 + torchvision 0.14 goldens, every fixture picture.</summary>
public class GoldenImageTests
{
    private static ImagingGoldens G => ImagingGoldens.Instance;

    [Theory]
    [MemberData(nameof(ImagingGoldens.CaseNames), MemberType = typeof(ImagingGoldens))]
    public void DecodeEqualsPilExactly(string name)
    {
        var c = G.Get(name);
        var image = ImagingGoldens.Decode(c);
        Assert.Equal((c.Width, c.Height), (image.Width, image.Height));
        // Every picture's RGB is in the golden either as the tensor or as its SHA-256, except the two
        // 1023x769 JPEGs whose RGB the fixture omits; those are covered by the tensor test below and by
        // the libjpeg-turbo reference decodes in JpegDecoderTests.
        if (!G.AssertExact($"{name}.rgb", image))
            Assert.Contains(name, new[] { "baseline_422_q75", "restart_420_q80" });
    }

    [Theory]
    [MemberData(nameof(ImagingGoldens.CaseNames), MemberType = typeof(ImagingGoldens))]
    public void ResizeMatchesPil(string name)
    {
        var c = G.Get(name);
        var image = ImagingGoldens.Decode(c);
        foreach (var t in c.Transforms)
        {
            var cfg = new PreprocessConfig { ImgSize = t.ImgSize, CropPct = t.CropPct };
            var (w, h) = Preprocessor.ResizedSize(image.Width, image.Height, cfg.ScaleSize);
            Assert.Equal((t.ResizeW, t.ResizeH), (w, h));
            // Goldens exist for some pictures only; where present the port of Pillow's resampler is bit-exact.
            G.AssertExact($"{name}.resized_{t.Key}", Resampler.Resize(image, w, h, ResampleFilter.Bicubic));
        }
    }

    [Theory]
    [MemberData(nameof(ImagingGoldens.CaseNames), MemberType = typeof(ImagingGoldens))]
    public void TensorMatchesTimmTransform(string name)
    {
        var c = G.Get(name);
        var image = ImagingGoldens.Decode(c);
        var checkedAny = false;
        foreach (var t in c.Transforms)
        {
            var tensorName = $"{name}.tensor_{t.Key}";
            if (!G.File.Contains(tensorName)) continue;
            var pre = new Preprocessor(new PreprocessConfig { ImgSize = t.ImgSize, CropPct = t.CropPct, Mean = t.Mean, Std = t.Std });
            var actual = pre.Run(image);
            var expected = G.File.ReadFloat32(tensorName);
            Assert.Equal(expected.Length, actual.Length);
            for (var i = 0; i < expected.Length; i++)
            {
                var ch = i / (t.ImgSize * t.ImgSize);
                // One 8-bit step after normalization; the golden is float16, so that is the real slack.
                var tol = 1.0 / 255 / t.Std[ch];
                if (Math.Abs(expected[i] - actual[i]) > tol)
                    Assert.Fail($"{tensorName}[{i}]: expected {expected[i]}, got {actual[i]} (tolerance {tol})");
            }
            checkedAny = true;
        }
        if (!checkedAny)
            Assert.Skip($"no tensor golden shipped for {name}");
    }

    [Fact]
    public void CroppedResizeEqualsFullResizeThenCrop()
    {
        var image = ImagingGoldens.Decode(G.Get("baseline_420_q90"));
        var pre = new Preprocessor(PreprocessConfig.ImageNet());
        var (w, h) = Preprocessor.ResizedSize(image.Width, image.Height, 256);
        var full = Resampler.Resize(image, w, h, ResampleFilter.Bicubic);
        var crop = pre.ResizeAndCrop(image);
        int ox = (int)Math.Round((w - 224) / 2.0, MidpointRounding.ToEven), oy = (int)Math.Round((h - 224) / 2.0, MidpointRounding.ToEven);
        for (var y = 0; y < 224; y++)
            Assert.True(full.Pixels.AsSpan(((oy + y) * w + ox) * 3, 224 * 3).SequenceEqual(crop.Pixels.AsSpan(y * 224 * 3, 224 * 3)), $"row {y}");
    }
}
