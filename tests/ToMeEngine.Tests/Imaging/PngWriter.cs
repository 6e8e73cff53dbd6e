using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using ToMe.Imaging;

namespace ToMe.Tests.Imaging;

/// <summary>
/// A small PNG encoder for tests: any colour type and bit depth, Adam7, every filter type (cycled per
/// row), tRNS, and the compressed stream split over several IDAT chunks.
/// </summary>
internal static class PngWriter
{
    /// <param name="samples">Per pixel, per channel sample values (row-major), each below 2^depth.</param>
    public static byte[] Encode(int width, int height, int colorType, int depth, int[] samples,
        byte[]? palette = null, byte[]? trns = null, bool adam7 = false, int idatChunks = 3)
    {
        var channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        var bitsPerPixel = channels * depth;
        var bpp = Math.Max(1, bitsPerPixel / 8);
        var raw = new MemoryStream();
        (int x0, int y0, int dx, int dy)[] passes = adam7
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)];
        var rowIndex = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw <= 0 || ph <= 0) continue;
            var rowBytes = (pw * bitsPerPixel + 7) / 8;
            var prev = new byte[rowBytes];
            for (var r = 0; r < ph; r++)
            {
                var line = new byte[rowBytes];
                for (var i = 0; i < pw; i++)
                {
                    var pixel = (y0 + r * dy) * width + x0 + i * dx;
                    for (var c = 0; c < channels; c++)
                    {
                        var v = samples[pixel * channels + c];
                        var bit = (i * channels + c) * depth;
                        if (depth == 16)
                        {
                            line[bit / 8] = (byte)(v >> 8);
                            line[bit / 8 + 1] = (byte)v;
                        }
                        else
                        {
                            line[bit / 8] |= (byte)(v << (8 - depth - bit % 8));
                        }
                    }
                }
                var filter = rowIndex++ % 5;
                raw.WriteByte((byte)filter);
                for (var i = 0; i < rowBytes; i++)
                {
                    int a = i >= bpp ? line[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    var pred = filter switch
                    {
                        0 => 0,
                        1 => a,
                        2 => b,
                        3 => (a + b) >> 1,
                        _ => Paeth(a, b, c),
                    };
                    raw.WriteByte((byte)(line[i] - pred));
                }
                prev = line;
            }
        }
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true))
            zs.Write(raw.ToArray());
        var compressed = z.ToArray();

        var png = new MemoryStream();
        png.Write(PngDecoder.Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = (byte)depth;
        ihdr[9] = (byte)colorType;
        ihdr[12] = (byte)(adam7 ? 1 : 0);
        WriteChunk(png, "IHDR", ihdr);
        WriteChunk(png, "tEXt", Encoding.ASCII.GetBytes("Comment\0ancillary chunks are skipped"));
        if (palette is not null) WriteChunk(png, "PLTE", palette);
        if (trns is not null) WriteChunk(png, "tRNS", trns);
        var step = (compressed.Length + idatChunks - 1) / idatChunks;
        for (var o = 0; o < compressed.Length; o += step)
            WriteChunk(png, "IDAT", compressed.AsSpan(o, Math.Min(step, compressed.Length - o)));
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    public static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> body)
    {
        Span<byte> be = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(be, body.Length);
        s.Write(be);
        var typed = new byte[4 + body.Length];
        Encoding.ASCII.GetBytes(type).CopyTo(typed, 0);
        body.CopyTo(typed.AsSpan(4));
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(be, PngDecoder.Crc32(typed));
        s.Write(be);
    }
}
