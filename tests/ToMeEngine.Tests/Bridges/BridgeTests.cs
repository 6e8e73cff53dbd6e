using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SkiaSharp;
using ToMe.ImageSharp;
using ToMe.Imaging;
using ToMe.SkiaSharp;
using ToMe.Tests.Support;

namespace ToMe.Tests.Bridges;

/// <summary>ToMeEngine.ImageSharp and ToMeEngine.SkiaSharp: their images classify as the same pixels do, and they decode what the built-in decoders lack.</summary>
public sealed class BridgeTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static ToMeEngine Load() =>
        ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions { Backend = BackendKind.Cpu, Schedule = ToMe.Merging.MergeSchedule.Constant(13) });

    private static string Picture => RepoData.Path("images/png_rgb.png");

    [Fact]
    public async Task AnImageSharpImageClassifiesAsItsPixels()
    {
        using var engine = Load();
        var pixels = ImageDecoder.Decode(Picture);
        var expected = engine.Classify(pixels);
        // Decoded by ImageSharp itself (PNG is lossless, so the pixels are the same), and built from the same bytes.
        using var loaded = SixLabors.ImageSharp.Image.Load<Rgb24>(Picture);
        using var built = SixLabors.ImageSharp.Image.LoadPixelData<Rgb24>(pixels.Pixels, pixels.Width, pixels.Height);
        using var withAlpha = built.CloneAs<Rgba32>();
        foreach (var image in new[] { loaded, built })
        {
            Assert.Equal(expected[0].ClassIndex, engine.Classify(image)[0].ClassIndex);
            Assert.Equal(expected, engine.Classify(image));
            Assert.Equal(expected, await engine.ClassifyAsync(image, cancellationToken: Token));
        }
        Assert.Equal(pixels.Pixels, withAlpha.ToRgbImage().Pixels);
        Assert.Equal([expected, expected], engine.ClassifyBatch([loaded, built]));
        Assert.Equal(engine.ExtractFeatures(pixels).Tokens, engine.ExtractFeatures(loaded).Tokens);
        Assert.Equal(engine.ExtractFeatures(pixels).Tokens, (await engine.ExtractFeaturesAsync(built, Token)).Tokens);
    }

    [Fact]
    public async Task AnSKBitmapClassifiesAsItsPixels()
    {
        using var engine = Load();
        var pixels = ImageDecoder.Decode(Picture);
        var expected = engine.Classify(pixels);
        // Decoded by Skia (into its platform colour type, BGRA here), and built from the same bytes.
        using var decoded = SKBitmap.Decode(Picture);
        using var built = pixels.ToSKBitmap();
        foreach (var bitmap in new[] { decoded, built })
        {
            Assert.Equal(expected[0].ClassIndex, engine.Classify(bitmap)[0].ClassIndex);
            Assert.Equal(expected, engine.Classify(bitmap));
            Assert.Equal(expected, await engine.ClassifyAsync(bitmap, cancellationToken: Token));
        }
        Assert.Equal([expected, expected], engine.ClassifyBatch([decoded, built]));
        Assert.Equal(engine.ExtractFeatures(pixels).Tokens, engine.ExtractFeatures(decoded).Tokens);
        Assert.Equal(engine.ExtractFeatures(pixels).Tokens, (await engine.ExtractFeaturesAsync(built, Token)).Tokens);
        using var image = SKImage.FromBitmap(decoded);
        Assert.Equal(pixels.Pixels, image.ToRgbImage().Pixels);
    }

    [Fact]
    public void TheRealModelGivesTheSameTop1ThroughEitherBridge()
    {
        var model = SharedData.Require("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        var photo = SharedData.Require("imagenet-samples/n02129604_tiger.JPEG");
        using var engine = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu, Schedule = ToMe.Merging.MergeSchedule.Constant(13) });
        var pixels = ImageDecoder.Decode(photo);
        var expected = engine.Classify(pixels, 1);
        Assert.Equal(292, expected[0].ClassIndex); // tiger
        using var sharp = SixLabors.ImageSharp.Image.LoadPixelData<Rgb24>(pixels.Pixels, pixels.Width, pixels.Height);
        using var skia = pixels.ToSKBitmap();
        Assert.Equal(expected, engine.Classify(sharp, 1));
        Assert.Equal(expected, engine.Classify(skia, 1));
    }

    public static TheoryData<string, ImageFormat, string> Decodable => new()
    {
        { "SkiaSharp", ImageFormat.Gif, "gif" }, { "SkiaSharp", ImageFormat.WebP, "webp" },
        { "ImageSharp", ImageFormat.Gif, "gif" }, { "ImageSharp", ImageFormat.WebP, "webp" }, { "ImageSharp", ImageFormat.Tiff, "tiff" },
    };

    private static IExternalImageDecoder Decoder(string name) => name == "SkiaSharp" ? SkiaSharpDecoder.Instance : ImageSharpDecoder.Instance;

    private static byte[] Encoded(string kind) => kind switch { "gif" => BridgeImages.Gif(), "webp" => BridgeImages.WebP(), _ => BridgeImages.Tiff() };

    [Theory]
    [MemberData(nameof(Decodable))]
    public void BridgesDecodeTheFormatsTheBuiltInDecodersLack(string decoder, ImageFormat format, string kind)
    {
        var data = Encoded(kind);
        Assert.Equal(format, ImageDecoder.Sniff(data));
        Assert.True(Decoder(decoder).CanDecode(format));
        var image = ImageDecoder.Decode(data, new DecodeOptions { ExternalDecoders = [Decoder(decoder)] });
        Assert.Equal((BridgeImages.Source.Width, BridgeImages.Source.Height), (image.Width, image.Height));
        Assert.Equal(BridgeImages.Source.Pixels, image.Pixels);
    }

    [Theory]
    [MemberData(nameof(Decodable))]
    public void BridgesRefuseOversizedAndTruncatedData(string decoder, ImageFormat format, string kind)
    {
        var data = Encoded(kind);
        var options = new DecodeOptions { ExternalDecoders = [Decoder(decoder)] };
        var big = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data, options with { MaxPixels = 100 }));
        Assert.Contains("exceeds the limit of 100", big.Message);
        Assert.StartsWith(format.DisplayName(), big.Message);
        Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data[..(data.Length / 2)], options));
    }

    [Fact]
    public void SkiaDecodesArithmeticCodedJpegAndImageSharpDeclines()
    {
        var data = File.ReadAllBytes(RepoData.Path("images/libjpeg/arith.jpg"));
        Assert.False(ImageSharpDecoder.Instance.CanDecode(ImageFormat.JpegArithmetic));
        Assert.False(SkiaSharpDecoder.Instance.CanDecode(ImageFormat.Tiff));
        var image = ImageDecoder.Decode(data, new DecodeOptions { ExternalDecoders = [ImageSharpDecoder.Instance, SkiaSharpDecoder.Instance] });
        Assert.Equal((61, 45), (image.Width, image.Height));
        Assert.True(image.Pixels.Distinct().Count() > 50, "a real picture, not a blank");
    }

    [Fact]
    public void FormatsNoBridgeReadsAreStillNamed()
    {
        byte[] heif = [0, 0, 0, 0x18, .. "ftypheic"u8, 0, 0, 0, 0, .. "mif1heic"u8];
        var options = new DecodeOptions { ExternalDecoders = [SkiaSharpDecoder.Instance, ImageSharpDecoder.Instance] };
        Assert.StartsWith("HEIF image: not read by the built-in decoders (JPEG (Huffman-coded), PNG, BMP, PPM/PGM) nor by SkiaSharp, ImageSharp here",
            Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(heif, options)).Message);
    }
}
