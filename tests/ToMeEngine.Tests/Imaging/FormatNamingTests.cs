using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

/// <summary>Formats without a built-in decoder are named by their magic bytes, and handed to external decoders when given.</summary>
public sealed class FormatNamingTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-formats-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    public static TheoryData<string, byte[], ImageFormat> Magic => new()
    {
        { "GIF", "GIF87a\x01\0\x01\0\0\0\0;"u8.ToArray(), ImageFormat.Gif },
        { "GIF", "GIF89a\x01\0\x01\0\0\0\0;"u8.ToArray(), ImageFormat.Gif },
        { "WebP", [.. "RIFF"u8, 0x1A, 0, 0, 0, .. "WEBPVP8L"u8, 0x0D, 0, 0, 0, 0x2F, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xFE, 0x07, 0], ImageFormat.WebP },
        { "TIFF", "II*\0\x08\0\0\0\0\0"u8.ToArray(), ImageFormat.Tiff },
        { "TIFF", "MM\0*\0\0\0\x08\0\0"u8.ToArray(), ImageFormat.Tiff },
        { "HEIF", [0, 0, 0, 0x18, .. "ftypheic"u8, 0, 0, 0, 0, .. "mif1heic"u8], ImageFormat.Heif },
        { "AVIF", [0, 0, 0, 0x1C, .. "ftypavif"u8, 0, 0, 0, 0, .. "avifmif1miaf"u8], ImageFormat.Avif },
        { "AVIF", [0, 0, 0, 0x1C, .. "ftypmif1"u8, 0, 0, 0, 0, .. "mif1avifmiaf"u8], ImageFormat.Avif },
        { "JPEG XL", [0xFF, 0x0A, 0xFA, 0x7F, 0x01, 0x90], ImageFormat.JpegXl },
        { "JPEG XL", [0, 0, 0, 0x0C, 0x4A, 0x58, 0x4C, 0x20, 0x0D, 0x0A, 0x87, 0x0A, 0, 0, 0, 0x14], ImageFormat.JpegXl },
        { "JPEG 2000", [0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A, 0, 0, 0, 0x14], ImageFormat.Jpeg2000 },
        { "arithmetic-coded JPEG", File.ReadAllBytes(RepoData.Path("images/libjpeg/arith.jpg")), ImageFormat.JpegArithmetic },
    };

    [Theory]
    [MemberData(nameof(Magic))]
    public void UnsupportedFormatsAreNamedAndTheWayToDecodeThemIsGiven(string name, byte[] data, ImageFormat format)
    {
        Assert.Equal(format, ImageDecoder.Sniff(data));
        var message = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data)).Message;
        Assert.StartsWith($"{name} image: not read by the built-in decoders (JPEG (Huffman-coded), PNG, BMP, PPM/PGM)", message);
        Assert.Contains("ToMeEngine.SkiaSharp or ToMeEngine.ImageSharp", message);
        Assert.DoesNotContain("unknown image format", message);
    }

    [Fact]
    public void TheFileNameLeadsTheMessage()
    {
        var path = Path.Combine(dir, "anim.gif");
        File.WriteAllBytes(path, "GIF89a\x01\0\x01\0\0\0\0;"u8.ToArray());
        Assert.StartsWith($"{path}: GIF image: ", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(path)).Message);
    }

    [Fact]
    public void HuffmanJpegsAndUnknownBytesAreAsBefore()
    {
        Assert.Equal(ImageFormat.Jpeg, ImageDecoder.Sniff(File.ReadAllBytes(RepoData.Path("images/baseline_420_q90.jpg"))));
        Assert.Equal(ImageFormat.Jpeg, ImageDecoder.Sniff(File.ReadAllBytes(RepoData.Path("images/libjpeg/gray_prog.jpg"))));
        Assert.Equal(ImageFormat.Unknown, ImageDecoder.Sniff([0, 0, 0, 0x10, .. "ftypmp42"u8, 0, 0, 0, 0]));
        Assert.StartsWith("unknown image format (first bytes 3C68746D6C3E", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode("<html></html>"u8)).Message);
    }

    [Fact]
    public void ExternalDecodersGetTheFormatsTheyAcceptInOrder()
    {
        var gif = "GIF89a\x01\0\x01\0\0\0\0;"u8.ToArray();
        var declines = new FakeDecoder("Declines", accepts: ImageFormat.Tiff);
        var first = new FakeDecoder("First", accepts: ImageFormat.Gif);
        var second = new FakeDecoder("Second", accepts: ImageFormat.Gif);
        var options = new DecodeOptions { ExternalDecoders = [declines, first, second] };
        var image = ImageDecoder.Decode(gif, options);
        Assert.Equal((3, 2), (image.Width, image.Height));
        Assert.Equal((0, 1, 0), (declines.Calls, first.Calls, second.Calls));
        Assert.Equal(ImageFormat.Gif, first.LastFormat);
        // Built-in formats never reach them.
        ImageDecoder.Decode(RepoData.Path("images/png_rgb.png"), options);
        Assert.Equal(1, first.Calls);
        // A format none of them reads names them.
        byte[] heif = [0, 0, 0, 0x18, .. "ftypheic"u8, 0, 0, 0, 0, .. "mif1heic"u8];
        Assert.Equal("HEIF image: not read by the built-in decoders (JPEG (Huffman-coded), PNG, BMP, PPM/PGM) nor by Declines, First, Second here; convert it",
            Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(heif, options)).Message);
    }

    [Fact]
    public async Task ADirectoryAndAMissingFileAreOneDocumentedException()
    {
        var missing = Path.Combine(dir, "nothere.jpg");
        var e = Assert.Throws<FileNotFoundException>(() => ImageDecoder.Decode(missing));
        Assert.Equal($"{missing}: no such file", e.Message);
        Assert.Equal(missing, e.FileName);
        var inMissingFolder = Path.Combine(dir, "no", "such", "folder.jpg");
        Assert.Throws<FileNotFoundException>(() => ImageDecoder.Decode(inMissingFolder));
        var directory = Assert.Throws<FileNotFoundException>(() => ImageDecoder.Decode(dir));
        Assert.StartsWith($"{dir} is a directory, not an image file", directory.Message);
        Assert.DoesNotContain("Could not find", directory.Message);
        await Assert.ThrowsAsync<FileNotFoundException>(() => ImageDecoder.DecodeAsync(dir, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Throws<FileNotFoundException>(() => ImageDecoder.SniffFile(missing));
    }

    private sealed class FakeDecoder(string name, ImageFormat accepts) : IExternalImageDecoder
    {
        public int Calls { get; private set; }
        public ImageFormat LastFormat { get; private set; }
        public string Name => name;
        public bool CanDecode(ImageFormat format) => format == accepts;

        public RgbImage Decode(byte[] data, ImageFormat format, DecodeOptions options)
        {
            Calls++;
            LastFormat = format;
            return new RgbImage(3, 2);
        }
    }
}
