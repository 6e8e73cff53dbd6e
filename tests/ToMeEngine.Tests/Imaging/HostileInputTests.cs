using System.Diagnostics;
using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

/// <summary>
/// Truncated, corrupted and nonsense input: the decoders either decode or throw
/// <see cref="InvalidImageException"/>, never anything else, never slowly.
/// </summary>
public class HostileInputTests
{
    public static TheoryData<string> Samples() => new(
        "images/tiny_420_q90.jpg", "images/progressive_420_q85.jpg", "images/libjpeg/prog_restart.jpg",
        "images/libjpeg/s422_restart_blocks.jpg", "images/libjpeg/gray_prog.jpg", "images/png_palette.png",
        "images/bmp_rgb.bmp", "images/libjpeg/short420_prog.ref.pnm", "png:adam7", "png:rgba16");

    private static byte[] Load(string name) => name switch
    {
        "png:adam7" => PngWriter.Encode(23, 17, 2, 8, Enumerable.Range(0, 23 * 17 * 3).Select(i => i * 7 % 256).ToArray(), adam7: true),
        "png:rgba16" => PngWriter.Encode(9, 7, 6, 16, Enumerable.Range(0, 9 * 7 * 4).Select(i => i * 977 % 65536).ToArray()),
        _ => File.ReadAllBytes(RepoData.Path(name)),
    };

    // A flipped bit in a size field can legitimately declare a much larger picture (a 500x375 JPEG
    // becoming 500x33143); decoding that is real work, not a hang, so the limit keeps such cases small.
    private static readonly DecodeOptions Limited = new() { MaxPixels = 2_000_000 };

    private static void DecodeOrReject(byte[] data, string what)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var image = ImageDecoder.Decode(data, Limited);
            Assert.Equal((long)image.Width * image.Height * 3, image.Pixels.LongLength);
        }
        catch (InvalidImageException e)
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Message), what);
        }
        catch (Exception e)
        {
            Assert.Fail($"{what}: {e.GetType().Name} escaped: {e.Message}");
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"{what}: took {sw.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void TruncationIsAlwaysReported(string name)
    {
        var data = Load(name);
        var offsets = Enumerable.Range(0, 64).Select(i => (int)((long)data.Length * i / 64))
            .Concat([1, 2, 3, 7, 8, 20, 33, data.Length - 2, data.Length - 1]).Where(o => o >= 0 && o < data.Length).Distinct();
        foreach (var n in offsets)
        {
            var sw = Stopwatch.StartNew();
            var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data.AsSpan(0, n)));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"truncated at {n}: took {sw.Elapsed.TotalMilliseconds:F0} ms");
            Assert.False(string.IsNullOrWhiteSpace(e.Message));
        }
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void BitFlipsDecodeOrThrowTheDocumentedException(string name)
    {
        var original = Load(name);
        var rng = new Random(name.GetHashCode(StringComparison.Ordinal) & 0xFFFF ^ 12345);
        for (var iteration = 0; iteration < 150; iteration++)
        {
            var data = (byte[])original.Clone();
            var flips = 1 + rng.Next(4);
            // Half the time aim at the headers, where the interesting damage is.
            var span = iteration % 2 == 0 ? Math.Min(data.Length, 700) : data.Length;
            for (var f = 0; f < flips; f++)
                data[rng.Next(span)] ^= (byte)(1 << rng.Next(8));
            DecodeOrReject(data, $"{name} iteration {iteration}");
        }
    }

    [Fact]
    public void EmptyAndUnknownInput()
    {
        Assert.Contains("empty", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(Array.Empty<byte>())).Message);
        Assert.Contains("unknown image format", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode("GIF86a......"u8)).Message);
        Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(new byte[1000]));
        Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(new MemoryStream()));
    }

    [Theory]
    [InlineData(new byte[] { 0xFF, 0xD8, 0xFF })]
    [InlineData(new byte[] { 0xFF, 0xD8, 0xFF, 0xD9 })]
    [InlineData(new byte[] { 0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x02, 0xFF, 0xD9 })]
    [InlineData(new byte[] { 0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0xFF, 0xD9 })]
    [InlineData(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A })]
    [InlineData(new byte[] { (byte)'B', (byte)'M', 0, 0, 0, 0 })]
    [InlineData(new byte[] { (byte)'P', (byte)'6', (byte)'\n', (byte)'9' })]
    public void DegenerateHeaders(byte[] data) => Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data));

    [Fact]
    public void FloodOfScansIsRefused()
    {
        byte[] v = [10, 20, 30, 40];
        var one = FlatJpegWriter.Encode([v, v, v], null);
        var sos = JpegDecoderTests.FindMarker(one, 0xDA);
        var scan = one.AsSpan(sos, one.Length - 2 - sos);
        var ms = new MemoryStream();
        ms.Write(one.AsSpan(0, one.Length - 2));
        for (var i = 0; i < 300; i++) ms.Write(scan);
        ms.Write([0xFF, 0xD9]);
        var sw = Stopwatch.StartNew();
        Assert.Contains("scans", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(ms.ToArray())).Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void RandomGarbageAfterMagic()
    {
        var rng = new Random(99);
        byte[][] magics = [[0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "BM"u8.ToArray(), "P6\n"u8.ToArray(), "P5 "u8.ToArray(), "P6\n12 9\n"u8.ToArray()];
        for (var i = 0; i < 300; i++)
        {
            var data = new byte[rng.Next(4, 3000)];
            rng.NextBytes(data);
            var magic = magics[i % magics.Length];
            magic.CopyTo(data, 0);
            DecodeOrReject(data, $"garbage {i}");
        }
    }

    /// <summary>
    /// A file that gives no length (a device, a pipe, /proc) is read no further than <see cref="DecodeOptions.MaxFileBytes"/>:
    /// /dev/zero has no end, and reading it whole ran the process out of memory.
    /// </summary>
    [Fact]
    public async Task AFileWithoutALengthIsReadNoFurtherThanMaxFileBytes()
    {
        const string endless = "/dev/zero";
        Assert.SkipUnless(File.Exists(endless), $"needs {endless}");
        var options = new DecodeOptions { MaxFileBytes = 1 << 20 };
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(endless, options));
        Assert.StartsWith(endless, e.Message);
        Assert.Contains("MaxFileBytes", e.Message);
        e = await Assert.ThrowsAsync<InvalidImageException>(() => ImageDecoder.DecodeAsync(endless, options, TestContext.Current.CancellationToken));
        Assert.StartsWith(endless, e.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed.TotalSeconds:F1} s");
        // What such a file holds within the limit is decoded as any image's bytes (an empty file is empty input).
        var empty = Path.GetTempFileName();
        try
        {
            Assert.Contains("empty", Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(empty, options)).Message);
        }
        finally
        {
            File.Delete(empty);
        }
    }
}
