using System.Buffers.Binary;
using System.Text;
using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

public class BmpPnmDecoderTests
{
    private const int W = 7, H = 5; // 7 pixels: rows need padding at every depth

    private static byte[] Reference()
    {
        var rng = new Random(7);
        var rgb = new byte[W * H * 3];
        rng.NextBytes(rgb);
        return rgb;
    }

    /// <summary>Builds a BITMAPINFOHEADER BMP; <paramref name="pixel"/> writes one pixel's bits.</summary>
    private static byte[] Bmp(int bits, bool topDown, uint compression = 0, uint[]? masks = null, byte[]? palette = null,
        Func<int, int, int>? index = null)
    {
        var rgb = Reference();
        var rowBytes = (W * bits + 31) / 32 * 4;
        var paletteBytes = palette?.Length ?? 0;
        var maskBytes = masks is null ? 0 : 12;
        var offset = 14 + 40 + maskBytes + paletteBytes;
        var data = new byte[offset + rowBytes * H];
        data[0] = (byte)'B';
        data[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(2), data.Length);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(10), offset);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(18), W);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(22), topDown ? -H : H);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(28), (short)bits);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(30), compression);
        if (masks is not null)
            for (var i = 0; i < 3; i++) BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(54 + 4 * i), masks[i]);
        palette?.CopyTo(data, 54 + maskBytes);
        for (var y = 0; y < H; y++)
        {
            var row = data.AsSpan(offset + rowBytes * (topDown ? y : H - 1 - y), rowBytes);
            for (var x = 0; x < W; x++)
            {
                var p = (y * W + x) * 3;
                switch (bits)
                {
                    case 24:
                        (row[3 * x], row[3 * x + 1], row[3 * x + 2]) = (rgb[p + 2], rgb[p + 1], rgb[p]);
                        break;
                    case 32:
                        var m = masks ?? [0xFF0000, 0xFF00, 0xFF];
                        uint v = 0x5A5A5A5A & ~(m[0] | m[1] | m[2]);
                        v |= (uint)rgb[p] << System.Numerics.BitOperations.TrailingZeroCount(m[0]);
                        v |= (uint)rgb[p + 1] << System.Numerics.BitOperations.TrailingZeroCount(m[1]);
                        v |= (uint)rgb[p + 2] << System.Numerics.BitOperations.TrailingZeroCount(m[2]);
                        BinaryPrimitives.WriteUInt32LittleEndian(row[(4 * x)..], v);
                        break;
                    default:
                        var bit = x * bits;
                        row[bit / 8] |= (byte)(index!(x, y) << (8 - bits - bit % 8));
                        break;
                }
            }
        }
        return data;
    }

    [Theory]
    [InlineData(24, false)]
    [InlineData(24, true)]
    [InlineData(32, false)]
    [InlineData(32, true)]
    public void DirectColor(int bits, bool topDown)
    {
        var image = ImageDecoder.Decode(Bmp(bits, topDown));
        Assert.Equal(Reference(), image.Pixels);
    }

    [Theory]
    [InlineData(0x00FF0000u, 0x0000FF00u, 0x000000FFu)]
    [InlineData(0xFF000000u, 0x00FF0000u, 0x0000FF00u)]
    [InlineData(0x000000FFu, 0x0000FF00u, 0x00FF0000u)]
    public void BitfieldsThirtyTwoBit(uint r, uint g, uint b)
    {
        var image = ImageDecoder.Decode(Bmp(32, false, compression: 3, masks: [r, g, b]));
        Assert.Equal(Reference(), image.Pixels);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(8)]
    public void Palette(int bits)
    {
        var colors = 1 << bits;
        var rng = new Random(bits);
        var palette = new byte[colors * 4];
        rng.NextBytes(palette);
        int Index(int x, int y) => (x * 3 + y * 5) % colors;
        var image = ImageDecoder.Decode(Bmp(bits, false, palette: palette, index: Index));
        for (var y = 0; y < H; y++)
            for (var x = 0; x < W; x++)
            {
                var e = Index(x, y) * 4;
                var p = (y * W + x) * 3;
                Assert.Equal((palette[e + 2], palette[e + 1], palette[e]), (image.Pixels[p], image.Pixels[p + 1], image.Pixels[p + 2]));
            }
    }

    [Fact]
    public void FixtureBmpEqualsPil()
    {
        var image = ImageDecoder.Decode(RepoData.Path("images/bmp_rgb.bmp"));
        Assert.True(ImagingGoldens.Instance.AssertExact("bmp_rgb.rgb", image));
    }

    [Fact]
    public void RleIsRefusedClearly()
    {
        var data = Bmp(8, false, palette: new byte[1024], index: (_, _) => 0);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(30), 1);
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data));
        Assert.Contains("compression", e.Message);
    }

    private static byte[] Pnm(string magic, int maxval, int channels, ushort[] samples, string header = "")
    {
        var ms = new MemoryStream();
        ms.Write(Encoding.ASCII.GetBytes($"{magic}\n# a comment\n{header}{W} {H}\n{maxval}\n"));
        foreach (var s in samples)
        {
            if (maxval > 255) ms.WriteByte((byte)(s >> 8));
            ms.WriteByte((byte)s);
        }
        return ms.ToArray();
    }

    [Theory]
    [InlineData("P6", 255)]
    [InlineData("P6", 100)]
    [InlineData("P6", 65535)]
    [InlineData("P6", 1023)]
    [InlineData("P5", 255)]
    [InlineData("P5", 15)]
    [InlineData("P5", 65535)]
    public void PortablePixmaps(string magic, int maxval)
    {
        var channels = magic == "P6" ? 3 : 1;
        var rng = new Random(maxval);
        var samples = Enumerable.Range(0, W * H * channels).Select(_ => (ushort)rng.Next(maxval + 1)).ToArray();
        var image = ImageDecoder.Decode(Pnm(magic, maxval, channels, samples));
        for (var p = 0; p < W * H; p++)
            for (var c = 0; c < 3; c++)
            {
                var s = samples[p * channels + (channels == 3 ? c : 0)];
                // PIL 9's PPM decoder: round(value / maxval * 255), ties to even.
                var expected = maxval == 255 ? s : (byte)Math.Round(s / (double)maxval * 255.0);
                Assert.Equal(expected, image.Pixels[p * 3 + c]);
            }
    }

    [Fact]
    public void PlainPnmIsRefusedClearly()
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode("P3\n1 1\n255\n0 0 0\n"u8));
        Assert.Contains("P3", e.Message);
    }

    [Fact]
    public void TruncatedPixmapIsReported()
    {
        var data = Pnm("P6", 255, 3, new ushort[W * H * 3]);
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(data.AsSpan(0, data.Length - 1)));
        Assert.Contains("truncated", e.Message);
    }
}
