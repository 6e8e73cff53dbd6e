using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

public class JpegDecoderTests
{
    public static TheoryData<string> LibjpegVariants() =>
        new(Directory.GetFiles(RepoData.Path("images/libjpeg"), "*.jpg").Select(Path.GetFileNameWithoutExtension)
            .Where(n => n != "arith").Order()!);

    /// <summary>
    /// Sampling layouts, restarts and table variants the PIL fixtures lack, against djpeg from the
    /// libjpeg-turbo that made them (the library and default settings PIL decodes with).
    /// </summary>
    [Theory]
    [MemberData(nameof(LibjpegVariants))]
    public void VariantEqualsLibjpegTurboExactly(string name)
    {
        var actual = ImageDecoder.Decode(RepoData.Path($"images/libjpeg/{name}.jpg"));
        var expected = ImageDecoder.Decode(RepoData.Path($"images/libjpeg/{name}.ref.pnm"));
        Assert.Equal((expected.Width, expected.Height), (actual.Width, actual.Height));
        var diff = expected.Pixels.Zip(actual.Pixels).Count(p => p.First != p.Second);
        Assert.True(diff == 0, $"{name}: {diff} of {expected.Pixels.Length} values differ from libjpeg-turbo");
    }

    [Fact]
    public void ArithmeticCodingIsRefusedClearly()
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(RepoData.Path("images/libjpeg/arith.jpg")));
        Assert.Contains("arithmetic", e.Message);
    }

    [Fact]
    public void TwelveBitPrecisionIsRefusedClearly()
    {
        var data = File.ReadAllBytes(RepoData.Path("images/tiny_420_q90.jpg"));
        var sof = FindMarker(data, 0xC0);
        data[sof + 4] = 12;
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data));
        Assert.Contains("12-bit", e.Message);
    }

    [Fact]
    public void TwoComponentFrameIsRefused()
    {
        var data = File.ReadAllBytes(RepoData.Path("images/tiny_420_q90.jpg"));
        data[FindMarker(data, 0xC0) + 9] = 2;
        Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data));
    }

    [Fact]
    public void MissingEoiIsTruncation()
    {
        var data = File.ReadAllBytes(RepoData.Path("images/tiny_420_q90.jpg"));
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data.AsSpan(0, data.Length - 2)));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void DeclaredHugeFrameIsRefusedBeforeAllocating()
    {
        var data = File.ReadAllBytes(RepoData.Path("images/tiny_420_q90.jpg"));
        var sof = FindMarker(data, 0xC0);
        // JPEG sizes are 16-bit, so 100000 x 100000 cannot be declared; 65535 x 65535 is the largest.
        data[sof + 5] = 0xFF; data[sof + 6] = 0xFF; data[sof + 7] = 0xFF; data[sof + 8] = 0xFF;
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data));
        Assert.Contains("MaxPixels", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated before refusing");
        // A lower limit refuses ordinary pictures the same way.
        Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(File.ReadAllBytes(RepoData.Path("images/tiny_420_q90.jpg")),
            new DecodeOptions { MaxPixels = 1000 }));
    }

    [Fact]
    public void EveryImageNetSampleDecodes()
    {
        var dir = SharedData.Require("imagenet-samples");
        var files = Directory.GetFiles(dir, "*.JPEG").Concat(Directory.GetFiles(dir, "*.jpg")).ToList();
        Assert.NotEmpty(files);
        var gray = 0;
        foreach (var f in files)
        {
            var image = ImageDecoder.Decode(f);
            Assert.InRange(image.Width, 16, 10000);
            Assert.InRange(image.Height, 16, 10000);
            var p = image.Pixels;
            var isGray = true;
            for (var i = 0; i < p.Length && isGray; i += 3)
                isGray = p[i] == p[i + 1] && p[i] == p[i + 2];
            if (isGray) gray++;
        }
        // The collection holds about a dozen grayscale photos; they come out with R = G = B.
        Assert.InRange(gray, 1, files.Count / 4);
    }

    internal static int FindMarker(byte[] data, byte marker)
    {
        for (var i = 2; i + 1 < data.Length; i++)
            if (data[i] == 0xFF && data[i + 1] == marker)
                return i;
        throw new InvalidOperationException($"marker {marker:X2} not found");
    }
}
