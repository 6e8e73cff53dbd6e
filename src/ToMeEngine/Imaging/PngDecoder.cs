using System.IO.Compression;

namespace ToMe.Imaging;

/// <summary>
/// PNG decoder: every colour type and bit depth, palette, Adam7, all filters, multiple IDAT, CRC check.
/// Output is PIL's <c>convert("RGB")</c>: alpha and tRNS are dropped, grey is replicated, samples below
/// 8 bits are scaled by bit replication (PIL's "L;2"/"L;4" and "1" unpackers), 16-bit samples keep their
/// high byte. (PIL opens 16-bit greyscale as mode "I" and its I->RGB conversion clips at 255 instead;
/// the high byte is the faithful 8-bit picture, so that is what this decoder returns.)
/// </summary>
internal static class PngDecoder
{
    public static ReadOnlySpan<byte> Signature => [137, 80, 78, 71, 13, 10, 26, 10];

    private static InvalidImageException Error(string m) => new($"PNG: {m}");

    private static readonly uint[] CrcTable = BuildCrcTable();

    private static uint[] BuildCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        var c = 0xFFFFFFFFu;
        foreach (var b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    private static uint U32(ReadOnlySpan<byte> d, int p) => (uint)(d[p] << 24 | d[p + 1] << 16 | d[p + 2] << 8 | d[p + 3]);

    public static RgbImage Decode(byte[] data, DecodeOptions options)
    {
        var pos = 8;
        int width = 0, height = 0, depth = 0, colorType = 0, interlace = 0;
        byte[]? palette = null;
        var idat = new MemoryStream();
        var seenHeader = false;
        while (true)
        {
            if (pos + 12 > data.Length) throw Error("truncated file (no IEND chunk)");
            var len = U32(data, pos);
            if (len > int.MaxValue || pos + 12 + (long)len > data.Length) throw Error("truncated chunk");
            var type = data.AsSpan(pos + 4, 4);
            var body = data.AsSpan(pos + 8, (int)len);
            if (options.CheckPngCrc && Crc32(data.AsSpan(pos + 4, 4 + (int)len)) != U32(data, pos + 8 + (int)len))
                throw Error($"CRC mismatch in chunk '{System.Text.Encoding.ASCII.GetString(type)}' (corrupt file)");
            pos += 12 + (int)len;
            if (!seenHeader && !type.SequenceEqual("IHDR"u8)) throw Error("first chunk is not IHDR");
            if (type.SequenceEqual("IHDR"u8))
            {
                if (seenHeader) throw Error("duplicate IHDR");
                if (len != 13) throw Error("IHDR length is not 13");
                var w = U32(body, 0);
                var h = U32(body, 4);
                if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue) throw Error($"invalid dimensions {w}x{h}");
                options.CheckSize("PNG", w, h);
                width = (int)w;
                height = (int)h;
                depth = body[8];
                colorType = body[9];
                interlace = body[12];
                var ok = colorType switch
                {
                    0 => depth is 1 or 2 or 4 or 8 or 16,
                    3 => depth is 1 or 2 or 4 or 8,
                    2 or 4 or 6 => depth is 8 or 16,
                    _ => false,
                };
                if (!ok) throw Error($"invalid colour type {colorType} with bit depth {depth}");
                if (body[10] != 0 || body[11] != 0 || interlace > 1) throw Error("unknown compression, filter or interlace method");
                seenHeader = true;
            }
            else if (type.SequenceEqual("PLTE"u8))
            {
                if (len % 3 != 0 || len > 768) throw Error("invalid PLTE length");
                palette = body.ToArray();
            }
            else if (type.SequenceEqual("IDAT"u8))
            {
                idat.Write(body);
            }
            else if (type.SequenceEqual("IEND"u8))
            {
                break;
            }
            else if ((type[0] & 0x20) == 0 && !type.SequenceEqual("tRNS"u8))
            {
                throw Error($"unknown critical chunk '{System.Text.Encoding.ASCII.GetString(type)}'");
            }
        }
        if (idat.Length == 0) throw Error("no IDAT data");
        if (colorType == 3 && palette is null) throw Error("palette image without PLTE");

        var channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        var bitsPerPixel = channels * depth;
        var bpp = Math.Max(1, bitsPerPixel / 8); // filter distance in bytes

        // Sub-images: Adam7 passes or the whole picture.
        ReadOnlySpan<(int x0, int y0, int dx, int dy)> passes = interlace == 1
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)];
        long expected = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            long pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw > 0 && ph > 0) expected += ph * (1 + (pw * bitsPerPixel + 7) / 8);
        }
        if (expected > int.MaxValue) throw Error("decompressed size too large");
        // Deflate expands at most 1032:1, so a tiny IDAT declaring a huge picture is refused here,
        // before the buffers for the declared size are allocated.
        if (expected > idat.Length * 1032L + 1024)
            throw Error($"{idat.Length} bytes of compressed data cannot hold the {expected} bytes {width}x{height} needs (truncated or forged header)");
        var raw = new byte[expected];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            var got = 0;
            while (got < raw.Length)
            {
                var n = z.Read(raw, got, raw.Length - got);
                if (n == 0) throw Error($"truncated image data ({got} of {raw.Length} bytes)");
                got += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidImageException($"PNG: corrupt compressed data ({e.Message})", e);
        }

        var image = new RgbImage(width, height);
        var rp = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw <= 0 || ph <= 0) continue;
            var rowBytes = (int)(((long)pw * bitsPerPixel + 7) / 8);
            var prev = new byte[rowBytes];
            for (var r = 0; r < ph; r++)
            {
                int filter = raw[rp];
                var row = raw.AsSpan(rp + 1, rowBytes);
                Unfilter(filter, row, prev, bpp);
                EmitRow(row, image, y0 + r * dy, x0, dx, pw, colorType, depth, palette);
                row.CopyTo(prev);
                rp += 1 + rowBytes;
            }
        }
        return image;
    }

    private static void Unfilter(int filter, Span<byte> row, ReadOnlySpan<byte> prev, int bpp)
    {
        var n = row.Length;
        switch (filter)
        {
            case 0:
                break;
            case 1:
                for (var i = bpp; i < n; i++) row[i] += row[i - bpp];
                break;
            case 2:
                for (var i = 0; i < n; i++) row[i] += prev[i];
                break;
            case 3:
                for (var i = 0; i < bpp && i < n; i++) row[i] += (byte)(prev[i] >> 1);
                for (var i = bpp; i < n; i++) row[i] += (byte)((row[i - bpp] + prev[i]) >> 1);
                break;
            case 4:
                for (var i = 0; i < bpp && i < n; i++) row[i] += prev[i];
                for (var i = bpp; i < n; i++)
                {
                    int a = row[i - bpp], b = prev[i], c = prev[i - bpp];
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default:
                throw Error($"invalid filter type {filter}");
        }
    }

    private static void EmitRow(ReadOnlySpan<byte> row, RgbImage image, int y, int x0, int dx, int count,
        int colorType, int depth, byte[]? palette)
    {
        var px = image.Pixels;
        var d = (y * image.Width + x0) * 3;
        var step = dx * 3;
        switch (colorType)
        {
            case 2:
                for (int i = 0, s = 0, sz = depth / 8 * 3; i < count; i++, s += sz, d += step)
                {
                    var b = depth / 8;
                    px[d] = row[s];
                    px[d + 1] = row[s + b];
                    px[d + 2] = row[s + 2 * b];
                }
                break;
            case 6:
                for (int i = 0, s = 0, sz = depth / 8 * 4; i < count; i++, s += sz, d += step)
                {
                    var b = depth / 8;
                    px[d] = row[s];
                    px[d + 1] = row[s + b];
                    px[d + 2] = row[s + 2 * b];
                }
                break;
            case 4:
                for (int i = 0, s = 0, sz = depth / 8 * 2; i < count; i++, s += sz, d += step)
                    px[d] = px[d + 1] = px[d + 2] = row[s];
                break;
            default:
                {
                    // Grey or palette, 1..16 bits.
                    var scale = depth switch { 1 => 255, 2 => 85, 4 => 17, _ => 1 };
                    for (var i = 0; i < count; i++, d += step)
                    {
                        int v;
                        if (depth >= 8)
                        {
                            v = row[i * (depth / 8)];
                        }
                        else
                        {
                            var bit = i * depth;
                            v = (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
                        }
                        if (colorType == 3)
                        {
                            // Indices beyond the palette come out black.
                            var p = v * 3;
                            if (p + 2 < palette!.Length)
                            {
                                px[d] = palette[p];
                                px[d + 1] = palette[p + 1];
                                px[d + 2] = palette[p + 2];
                            }
                            else
                            {
                                px[d] = px[d + 1] = px[d + 2] = 0;
                            }
                        }
                        else
                        {
                            px[d] = px[d + 1] = px[d + 2] = (byte)(depth < 8 ? v * scale : v);
                        }
                    }
                    break;
                }
        }
    }
}
