using System.Buffers.Binary;
using System.Numerics;

namespace ToMe.Imaging;

/// <summary>
/// Windows BMP: 1/4/8-bit palette, 24-bit, 32-bit BI_RGB (4th byte ignored) and BI_BITFIELDS with 8-bit
/// wide channel masks; bottom-up and top-down. RLE and 16-bit files are refused with a clear error.
/// </summary>
internal static class BmpDecoder
{
    private static InvalidImageException Error(string m) => new($"BMP: {m}");

    public static RgbImage Decode(byte[] data, DecodeOptions options)
    {
        var d = data.AsSpan();
        if (d.Length < 26) throw Error("truncated header");
        var pixelOffset = BinaryPrimitives.ReadUInt32LittleEndian(d[10..]);
        var headerSize = BinaryPrimitives.ReadUInt32LittleEndian(d[14..]);
        if (headerSize is not (12 or 40 or 52 or 56 or 64 or 108 or 124)) throw Error($"unsupported header size {headerSize}");
        if (14 + headerSize > d.Length) throw Error("truncated header");
        long width, height;
        int bitCount;
        uint compression = 0, colorsUsed = 0;
        if (headerSize == 12)
        {
            width = BinaryPrimitives.ReadUInt16LittleEndian(d[18..]);
            height = BinaryPrimitives.ReadInt16LittleEndian(d[20..]);
            bitCount = BinaryPrimitives.ReadUInt16LittleEndian(d[24..]);
        }
        else
        {
            width = BinaryPrimitives.ReadInt32LittleEndian(d[18..]);
            height = BinaryPrimitives.ReadInt32LittleEndian(d[22..]);
            bitCount = BinaryPrimitives.ReadUInt16LittleEndian(d[28..]);
            compression = BinaryPrimitives.ReadUInt32LittleEndian(d[30..]);
            colorsUsed = BinaryPrimitives.ReadUInt32LittleEndian(d[46..]);
        }
        var topDown = height < 0;
        height = Math.Abs(height);
        options.CheckSize("BMP", width, height);
        int w = (int)width, h = (int)height;

        uint rMask = 0xFF0000, gMask = 0xFF00, bMask = 0xFF;
        if (compression == 3 && bitCount == 32)
        {
            // Masks follow a 40-byte header, or sit inside V2+ headers at the same offset.
            if (14 + 40 + 12 > d.Length) throw Error("truncated bitfield masks");
            rMask = BinaryPrimitives.ReadUInt32LittleEndian(d[54..]);
            gMask = BinaryPrimitives.ReadUInt32LittleEndian(d[58..]);
            bMask = BinaryPrimitives.ReadUInt32LittleEndian(d[62..]);
            foreach (var m in new[] { rMask, gMask, bMask })
                if (BitOperations.PopCount(m) != 8 || m >> BitOperations.TrailingZeroCount(m) != 0xFF)
                    throw Error($"unsupported bitfield mask 0x{m:X8} (8-bit channels only)");
        }
        else if (compression != 0)
        {
            throw Error($"unsupported compression {compression} (RLE and other encodings are not supported)");
        }
        if (bitCount is not (1 or 4 or 8 or 24 or 32)) throw Error($"unsupported bit depth {bitCount}");

        byte[]? palette = null;
        if (bitCount <= 8)
        {
            var entrySize = headerSize == 12 ? 3 : 4;
            var count = colorsUsed == 0 ? 1 << bitCount : (int)Math.Min(colorsUsed, 256u);
            var start = 14 + (int)headerSize;
            if (start + (long)count * entrySize > d.Length) throw Error("truncated palette");
            palette = new byte[256 * 3]; // missing entries stay black
            for (var i = 0; i < count; i++)
            {
                var p = start + i * entrySize;
                palette[i * 3] = d[p + 2];
                palette[i * 3 + 1] = d[p + 1];
                palette[i * 3 + 2] = d[p];
            }
        }

        long rowBytes = ((long)w * bitCount + 31) / 32 * 4;
        if (pixelOffset > d.Length || pixelOffset + rowBytes * h > d.Length)
            throw Error($"truncated pixel data (need {rowBytes * h} bytes at offset {pixelOffset}, file has {d.Length})");
        int rs = BitOperations.TrailingZeroCount(rMask), gs = BitOperations.TrailingZeroCount(gMask), bs = BitOperations.TrailingZeroCount(bMask);

        var image = new RgbImage(w, h);
        var px = image.Pixels;
        for (var y = 0; y < h; y++)
        {
            var src = d.Slice((int)(pixelOffset + rowBytes * (topDown ? y : h - 1 - y)), (int)rowBytes);
            var o = y * w * 3;
            switch (bitCount)
            {
                case 24:
                    for (var x = 0; x < w; x++, o += 3)
                    {
                        px[o] = src[3 * x + 2];
                        px[o + 1] = src[3 * x + 1];
                        px[o + 2] = src[3 * x];
                    }
                    break;
                case 32:
                    for (var x = 0; x < w; x++, o += 3)
                    {
                        var v = BinaryPrimitives.ReadUInt32LittleEndian(src[(4 * x)..]);
                        px[o] = (byte)(v >> rs);
                        px[o + 1] = (byte)(v >> gs);
                        px[o + 2] = (byte)(v >> bs);
                    }
                    break;
                default:
                    for (var x = 0; x < w; x++, o += 3)
                    {
                        var bit = x * bitCount;
                        var idx = (src[bit >> 3] >> (8 - bitCount - (bit & 7))) & ((1 << bitCount) - 1);
                        px[o] = palette![idx * 3];
                        px[o + 1] = palette[idx * 3 + 1];
                        px[o + 2] = palette[idx * 3 + 2];
                    }
                    break;
            }
        }
        return image;
    }
}
