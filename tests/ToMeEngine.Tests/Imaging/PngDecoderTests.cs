using System.Buffers.Binary;
using ToMe.Imaging;

namespace ToMe.Tests.Imaging;

public class PngDecoderTests
{
    public static TheoryData<int, int, bool> Formats()
    {
        var data = new TheoryData<int, int, bool>();
        foreach (var adam7 in new[] { false, true })
        {
            foreach (var d in new[] { 1, 2, 4, 8, 16 }) data.Add(0, d, adam7);
            foreach (var d in new[] { 1, 2, 4, 8 }) data.Add(3, d, adam7);
            foreach (var ct in new[] { 2, 4, 6 })
                foreach (var d in new[] { 8, 16 })
                    data.Add(ct, d, adam7);
        }
        return data;
    }

    /// <summary>
    /// Every colour type and depth, plain and interlaced, against what PIL's convert("RGB") gives:
    /// grey replicated (sub-byte depths scaled by bit replication), palette looked up, alpha and tRNS
    /// dropped, 16-bit samples reduced to their high byte.
    /// </summary>
    [Theory]
    [MemberData(nameof(Formats))]
    public void DecodesEveryColorTypeAndDepth(int colorType, int depth, bool adam7)
    {
        const int w = 19, h = 13; // odd sizes leave partial Adam7 passes and partial bytes
        var channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        var max = (1 << depth) - 1;
        var rng = new Random(colorType * 100 + depth + (adam7 ? 1000 : 0));
        var samples = new int[w * h * channels];
        for (var i = 0; i < samples.Length; i++) samples[i] = rng.Next(max + 1);
        byte[]? palette = null, trns = null;
        if (colorType == 3)
        {
            palette = new byte[3 << depth];
            rng.NextBytes(palette);
            trns = [0, 128];
        }
        else if (colorType == 0)
        {
            trns = [0, 1];
        }
        else if (colorType == 2)
        {
            trns = [0, 1, 0, 2, 0, 3];
        }
        var png = PngWriter.Encode(w, h, colorType, depth, samples, palette, trns, adam7);

        var image = ImageDecoder.Decode(png);
        Assert.Equal((w, h), (image.Width, image.Height));
        for (var p = 0; p < w * h; p++)
        {
            byte r, g, b;
            int To8(int v) => depth == 16 ? v >> 8 : depth == 8 ? v : v * 255 / max;
            switch (colorType)
            {
                case 3:
                    var idx = samples[p];
                    (r, g, b) = (palette![idx * 3], palette[idx * 3 + 1], palette[idx * 3 + 2]);
                    break;
                case 0 or 4:
                    r = g = b = (byte)To8(samples[p * channels]);
                    break;
                default:
                    (r, g, b) = ((byte)To8(samples[p * channels]), (byte)To8(samples[p * channels + 1]), (byte)To8(samples[p * channels + 2]));
                    break;
            }
            var got = (image.Pixels[p * 3], image.Pixels[p * 3 + 1], image.Pixels[p * 3 + 2]);
            Assert.True((r, g, b) == got, $"pixel {p % w},{p / w}: expected {(r, g, b)}, got {got}");
        }
    }

    [Fact]
    public void CrcMismatchIsReportedUnlessDisabled()
    {
        var png = PngWriter.Encode(4, 4, 2, 8, new int[4 * 4 * 3]);
        png[^20] ^= 0x01; // inside the last IDAT's CRC or data
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(png));
        Assert.Contains("CRC", e.Message);
    }

    [Fact]
    public void CrcCheckCanBeTurnedOff()
    {
        var png = PngWriter.Encode(4, 4, 0, 8, Enumerable.Range(0, 16).ToArray());
        png[8 + 8 + 13] ^= 0xFF; // IHDR CRC
        Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(png));
        var image = ImageDecoder.Decode(png, new DecodeOptions { CheckPngCrc = false });
        Assert.Equal(15, image.Pixels[^1]);
    }

    [Fact]
    public void HugeDeclaredSizeIsRefusedBeforeAllocating()
    {
        var png = PngWriter.Encode(1, 1, 2, 8, [1, 2, 3]);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 100000);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 100000);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), PngDecoder.Crc32(png.AsSpan(12, 17)));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(png));
        Assert.Contains("100000x100000", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    [Fact]
    public void ShortImageDataIsTruncation()
    {
        // IDAT holding fewer rows than IHDR declares.
        var small = PngWriter.Encode(8, 4, 2, 8, new int[8 * 4 * 3]);
        var png = PngWriter.Encode(8, 8, 2, 8, new int[8 * 8 * 3]);
        var ms = new MemoryStream();
        ms.Write(png.AsSpan(0, 33));
        ms.Write(small.AsSpan(33));
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(ms.ToArray()));
        Assert.Contains("truncated", e.Message);
    }
}
