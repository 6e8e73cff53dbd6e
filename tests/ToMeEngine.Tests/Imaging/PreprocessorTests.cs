using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

public class PreprocessorTests
{
    private static RgbImage Noise(int w, int h, int seed)
    {
        var pixels = new byte[w * h * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(w, h, pixels);
    }

    [Theory]
    [InlineData(500, 375, 256, 341, 256)]
    [InlineData(333, 517, 256, 256, 397)]
    [InlineData(1023, 769, 248, 329, 248)]
    [InlineData(300, 300, 256, 256, 256)]
    [InlineData(1, 1000, 248, 248, 248000)]
    public void ResizedSizeTruncatesLikeTorchvision(int w, int h, int size, int ew, int eh) =>
        Assert.Equal((ew, eh), Preprocessor.ResizedSize(w, h, size));

    [Theory]
    [InlineData(256, 224, 16)]
    [InlineData(257, 224, 16)] // 16.5 rounds to even
    [InlineData(259, 224, 18)] // 17.5 rounds to even
    [InlineData(341, 224, 58)] // 58.5
    [InlineData(224, 224, 0)]
    [InlineData(200, 224, -12)] // padded: 12 left, 12 right
    [InlineData(201, 224, -11)] // padded: 11 left, 12 right
    public void CenterCropOffsetMatchesTorchvision(int size, int crop, int expected) =>
        Assert.Equal(expected, Preprocessor.CropOffset(size, crop));

    [Theory]
    [InlineData(224, 0.875, 256)]
    [InlineData(224, 0.9, 248)]
    [InlineData(384, 1.0, 384)]
    [InlineData(224, 0.95, 235)]
    public void ScaleSizeIsFloorOfImgSizeOverCropPct(int img, double crop, int expected) =>
        Assert.Equal(expected, new PreprocessConfig { ImgSize = img, CropPct = crop }.ScaleSize);

    [Fact]
    public void CropLargerThanResizeIsZeroPadded()
    {
        var pre = new Preprocessor(PreprocessConfig.ImageNet() with { CropPct = 1.25 }); // resize to 179, crop 224
        var image = Noise(64, 48, 1);
        var crop = pre.ResizeAndCrop(image);
        var (rw, rh) = Preprocessor.ResizedSize(64, 48, 179);
        var resized = Resampler.Resize(image, rw, rh, ResampleFilter.Bicubic);
        Assert.Equal((238, 179), (rw, rh));
        int ox = Preprocessor.CropOffset(rw, 224), oy = Preprocessor.CropOffset(rh, 224);
        Assert.Equal((7, -22), (ox, oy));
        for (var y = 0; y < 224; y++)
            for (var x = 0; x < 224; x++)
                for (var c = 0; c < 3; c++)
                {
                    int sx = x + ox, sy = y + oy;
                    var expected = sy >= 0 && sy < rh ? resized.Pixels[(sy * rw + sx) * 3 + c] : 0;
                    Assert.Equal(expected, crop.Pixels[(y * 224 + x) * 3 + c]);
                }
        var tensor = pre.Run(image);
        Assert.Equal((0 / 255f - 0.485f) / 0.229f, tensor[0]);
    }

    [Fact]
    public void BatchEqualsSingleRuns()
    {
        var pre = new Preprocessor(PreprocessConfig.Inception());
        var images = Enumerable.Range(0, 7).Select(i => Noise(100 + 37 * i, 300 - 29 * i, i)).ToList();
        var batch = pre.RunBatch(images);
        Assert.Equal(images.Count * pre.OutputLength, batch.Length);
        for (var i = 0; i < images.Count; i++)
            Assert.True(batch.AsSpan(i * pre.OutputLength, pre.OutputLength).SequenceEqual(pre.Run(images[i])), $"image {i}");
    }

    [Fact]
    public void NormalizeIsTorchsFloatArithmetic()
    {
        var values = Enumerable.Range(0, 256).Select(i => (byte)i).Concat([(byte)3, (byte)254, (byte)7]).ToArray(); // odd length: SIMD + tail
        var expected = values.Select(v => (v / 255f - 0.456f) / 0.224f).ToArray();
        var actual = new float[values.Length];
        Preprocessor.Normalize(values, actual, 0.456f, 0.224f);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void DestinationTooSmallIsRejected()
    {
        var pre = new Preprocessor(PreprocessConfig.ImageNet());
        Assert.Throws<ArgumentException>(() => pre.Run(Noise(10, 10, 0), new float[10]));
    }

    [Theory]
    [InlineData(ResampleFilter.Bilinear)]
    [InlineData(ResampleFilter.Bicubic)]
    public void ConstantPictureStaysConstant(ResampleFilter filter)
    {
        var image = new RgbImage(37, 23, Enumerable.Repeat(new byte[] { 10, 128, 250 }, 37 * 23).SelectMany(p => p).ToArray());
        foreach (var (w, h) in new[] { (11, 7), (80, 50), (37, 9), (5, 23) })
        {
            var r = Resampler.Resize(image, w, h, filter);
            for (var i = 0; i < r.Pixels.Length; i += 3)
                Assert.Equal((10, 128, 250), (r.Pixels[i], r.Pixels[i + 1], r.Pixels[i + 2]));
        }
    }

    [Fact]
    public void UnchangedSizeIsACopyAndOneAxisResizeLeavesTheOtherAlone()
    {
        var image = Noise(31, 17, 3);
        Assert.Equal(image.Pixels, Resampler.Resize(image, 31, 17, ResampleFilter.Bicubic).Pixels);
        // Width-only resize: each output row depends on its own input row only (vertical pass skipped).
        var wide = Resampler.Resize(image, 50, 17, ResampleFilter.Bilinear);
        var row = new RgbImage(31, 1, image.Pixels.AsSpan(5 * 93, 93).ToArray());
        Assert.Equal(Resampler.Resize(row, 50, 1, ResampleFilter.Bilinear).Pixels, wide.Pixels.AsSpan(5 * 150, 150).ToArray());
    }

    [Fact]
    public void BilinearWindowEqualsFullResize()
    {
        var image = Noise(97, 61, 4);
        var full = Resampler.Resize(image, 50, 40, ResampleFilter.Bilinear);
        var window = Resampler.ResizeWindow(image, 50, 40, ResampleFilter.Bilinear, 13, 7, 20, 25);
        for (var y = 0; y < 25; y++)
            Assert.True(full.Pixels.AsSpan(((7 + y) * 50 + 13) * 3, 60).SequenceEqual(window.Pixels.AsSpan(y * 60, 60)));
    }
    /// <summary>The crop window of a resized picture, padded with <paramref name="pad"/> where the picture is smaller.</summary>
    private static byte[] CropOf(RgbImage resized, int crop, byte[] pad)
    {
        int ox = Preprocessor.CropOffset(resized.Width, crop), oy = Preprocessor.CropOffset(resized.Height, crop);
        var expected = new byte[crop * crop * 3];
        for (var y = 0; y < crop; y++)
            for (var x = 0; x < crop; x++)
                for (var c = 0; c < 3; c++)
                {
                    int sx = x + ox, sy = y + oy;
                    expected[(y * crop + x) * 3 + c] = sx >= 0 && sx < resized.Width && sy >= 0 && sy < resized.Height
                        ? resized.Pixels[(sy * resized.Width + sx) * 3 + c] : pad[c];
                }
        return expected;
    }

    // timm's crop_mode "squash": transforms.Resize((scale_size, scale_size)) then CenterCrop(img_size).
    [Fact]
    public void SquashResizesBothSidesToTheScaleSizeThenCrops()
    {
        var cfg = PreprocessConfig.Inception() with { CropMode = CropMode.Squash };   // 248 -> 224
        var pre = new Preprocessor(cfg);
        var image = Noise(500, 375, 5);
        var resized = Resampler.Resize(image, 248, 248, ResampleFilter.Bicubic);
        Assert.Equal(CropOf(resized, 224, [0, 0, 0]), pre.ResizeAndCrop(image).Pixels);
        // A crop larger than the squashed picture is zero padded as in center mode.
        var padded = new Preprocessor(cfg with { CropPct = 1.25 });                 // 179 -> 224
        Assert.Equal(CropOf(Resampler.Resize(image, 179, 179, ResampleFilter.Bicubic), 224, [0, 0, 0]), padded.ResizeAndCrop(image).Pixels);
    }

    // timm's ResizeKeepRatio(longest=1): ratio = max(h / size, w / size), sides round(side / ratio) with Python's round.
    [Theory]
    [InlineData(500, 375, 248, 248, 186)]
    [InlineData(333, 517, 256, 165, 256)]    // 333 / (517 / 256) = 164.89
    [InlineData(12, 5, 6, 6, 2)]             // 5 / 2 = 2.5 rounds to even
    [InlineData(14, 5, 4, 4, 1)]             // 5 / 3.5 = 1.43
    public void BorderResizesTheLongerSide(int w, int h, int size, int ew, int eh) =>
        Assert.Equal((ew, eh), Preprocessor.LongestSideSize(w, h, size));

    // timm's crop_mode "border": the longer side to scale_size, then CenterCropOrPad(img_size, fill=round(255 * mean)).
    [Fact]
    public void BorderPadsTheCropWithTheMeanColour()
    {
        var cfg = PreprocessConfig.ImageNet() with { CropMode = CropMode.Border, CropPct = 1.0 };   // 224 -> 224
        var pre = new Preprocessor(cfg);
        var image = Noise(500, 375, 6);
        var resized = Resampler.Resize(image, 224, 168, ResampleFilter.Bicubic);       // 375 / (500 / 224) = 168
        byte[] fill = [124, 116, 104];                                                  // round(255 * [0.485, 0.456, 0.406])
        var crop = pre.ResizeAndCrop(image).Pixels;
        Assert.Equal(CropOf(resized, 224, fill), crop);
        var tensor = pre.Run(image);
        for (var c = 0; c < 3; c++)
        {
            Assert.Equal((fill[c] / 255f - cfg.Mean[c]) / cfg.Std[c], tensor[c * 224 * 224]);               // top padding
            Assert.Equal((crop[(100 * 224 + 50) * 3 + c] / 255f - cfg.Mean[c]) / cfg.Std[c], tensor[c * 224 * 224 + 100 * 224 + 50]);
        }
    }

    // The file path decodes only the source region the crop reads: for every mode it must equal decoding the whole picture.
    [Theory]
    [InlineData(CropMode.Center)]
    [InlineData(CropMode.Squash)]
    [InlineData(CropMode.Border)]
    public void EveryCropModeFromAFileEqualsTheDecodedPicture(CropMode mode)
    {
        var pre = new Preprocessor(PreprocessConfig.Inception() with { CropMode = mode, CropPct = 0.6 });
        foreach (var file in new[] { "baseline_420_q90.jpg", "progressive_444_q92.jpg", "png_rgb.png" })
        {
            var bytes = File.ReadAllBytes(RepoData.Path($"images/{file}"));
            Assert.True(pre.Run(bytes).AsSpan().SequenceEqual(pre.Run(ImageDecoder.Decode(bytes))), $"{mode} {file}");
        }
    }
}
