using System.Buffers.Binary;
using System.Text;
using ToMe.Tests.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Reliability;

internal static partial class HostileCorpus
{
    private static (HostileCase, IReadOnlyList<(string, byte[])>) Image(string name, string fragment, byte[] bytes, string exception = InvalidImage) =>
        File(name, "image", exception, fragment, bytes);

    private static IEnumerable<(HostileCase, IReadOnlyList<(string, byte[])>)> Images() =>
        Pngs().Concat(Jpegs()).Concat(Bmps()).Concat(Pnms()).Concat(
        [
            Image("empty.img", "empty input", []),
            Image("gif.gif", "GIF image", "GIF89a\u0001\0\u0001\0\0\0\0;"u8.ToArray()),
        ]);

    // ---- PNG: built by hand with stored deflate blocks, so the bytes never depend on a zlib version.

    internal static byte[] Png(int width, int height, int colorType, int depth, byte[] raw, Action<MemoryStream>? beforeIdat = null, byte[]? idat = null)
    {
        var s = new MemoryStream();
        s.Write(global::ToMe.Imaging.PngDecoder.Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = (byte)depth;
        ihdr[9] = (byte)colorType;
        PngWriter.WriteChunk(s, "IHDR", ihdr);
        beforeIdat?.Invoke(s);
        PngWriter.WriteChunk(s, "IDAT", idat ?? StoredZlib(raw));
        PngWriter.WriteChunk(s, "IEND", []);
        return s.ToArray();
    }

    internal static byte[] StoredZlib(byte[] raw)
    {
        var s = new MemoryStream();
        s.Write([0x78, 0x01]);
        for (int start = 0; start == 0 || start < raw.Length; start += 65535)
        {
            int n = Math.Min(65535, raw.Length - start);
            s.WriteByte((byte)(start + n >= raw.Length ? 1 : 0));
            s.Write([(byte)n, (byte)(n >> 8), (byte)~n, (byte)(~n >> 8)]);
            s.Write(raw, start, n);
        }
        WriteAdler(s, raw.AsSpan(), 0);
        return s.ToArray();
    }

    /// <summary>Fixed-Huffman deflate of <paramref name="zeros"/> zero bytes: a literal, then length-258 copies at distance 1.</summary>
    internal static byte[] ZeroBombZlib(int zeros)
    {
        var bits = new List<bool>();
        void Put(int value, int count, bool msbFirst)
        {
            for (int i = 0; i < count; i++)
                bits.Add(((value >> (msbFirst ? count - 1 - i : i)) & 1) != 0);
        }
        Put(1, 1, false);            // BFINAL
        Put(1, 2, false);            // BTYPE = fixed Huffman
        Put(0x30, 8, true);          // literal 0
        int left = zeros - 1;
        for (; left >= 258; left -= 258)
        {
            Put(0b11000101, 8, true); // length code 285 = 258
            Put(0, 5, true);          // distance code 0 = 1
        }
        for (; left > 0; left--)
            Put(0x30, 8, true);
        Put(0, 7, true);             // end of block
        var s = new MemoryStream();
        s.Write([0x78, 0x01]);
        for (int i = 0; i < bits.Count; i += 8)
        {
            int b = 0;
            for (int j = 0; j < 8 && i + j < bits.Count; j++)
                b |= (bits[i + j] ? 1 : 0) << j;
            s.WriteByte((byte)b);
        }
        WriteAdler(s, [], zeros);
        return s.ToArray();
    }

    private static void WriteAdler(Stream s, ReadOnlySpan<byte> data, int extraZeros)
    {
        uint a = 1, b = 0;
        foreach (var x in data) { a = (a + x) % 65521; b = (b + a) % 65521; }
        for (int i = 0; i < extraZeros; i++) b = (b + a) % 65521;
        Span<byte> adler = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(adler, (b << 16) | a);
        s.Write(adler);
    }

    /// <summary>Rows of an 8x8 RGB8 picture, filter 0 (a gradient).</summary>
    private static byte[] Rgb8x8Rows()
    {
        var raw = new byte[8 * (1 + 24)];
        for (int y = 0; y < 8; y++)
            for (int i = 0; i < 24; i++)
                raw[y * 25 + 1 + i] = (byte)(y * 30 + i * 9);
        return raw;
    }

    private static byte[] Patch(byte[] data, int offset, params byte[] bytes)
    {
        var copy = (byte[])data.Clone();
        bytes.CopyTo(copy, offset);
        return copy;
    }

    private static IEnumerable<(HostileCase, IReadOnlyList<(string, byte[])>)> Pngs()
    {
        var rows = Rgb8x8Rows();
        var good = Png(8, 8, 2, 8, rows);
        yield return Image("png_truncated.png", "PNG", good[..(good.Length / 2)]);
        yield return Image("png_bad_crc.png", "CRC mismatch", Patch(good, 29, 0xEE));
        yield return Image("png_forged_size_tiny_idat.png", "cannot hold", Png(10000, 10000, 2, 8, rows));
        yield return Image("png_over_max_pixels.png", "exceeds the limit", Png(20000, 20000, 2, 8, rows));
        yield return Image("png_inflates_past_declared.png", "", Png(8, 8, 2, 8, [], idat: ZeroBombZlib(1 << 20)), "none");
        yield return Image("png_chunk_length_huge.png", "truncated chunk", Patch(good, 33, 0x7F, 0xFF, 0xFF, 0xF0));
        yield return Image("png_chunk_length_negative.png", "truncated chunk", Patch(good, 33, 0xFF, 0xFF, 0xFF, 0xFF));
        var textFirst = new MemoryStream();
        textFirst.Write(good.AsSpan(0, 8));
        PngWriter.WriteChunk(textFirst, "tEXt", "Comment\0first"u8);
        textFirst.Write(good.AsSpan(8));
        yield return Image("png_text_before_ihdr.png", "first chunk is not IHDR", textFirst.ToArray());
        var headerOnly = new MemoryStream();
        headerOnly.Write(good.AsSpan(0, 33));
        PngWriter.WriteChunk(headerOnly, "IEND", []);
        yield return Image("png_no_idat.png", "no IDAT data", headerOnly.ToArray());
        var badFilter = (byte[])rows.Clone();
        badFilter[25] = 9;
        yield return Image("png_bad_filter.png", "invalid filter type 9", Png(8, 8, 2, 8, badFilter));
        yield return Image("png_bad_colour_type.png", "invalid colour type 5", Png(8, 8, 5, 8, rows));
        yield return Image("png_zero_width.png", "invalid dimensions", Png(0, 8, 2, 8, rows));
        yield return Image("png_short_image_data.png", "truncated image data", Png(8, 8, 2, 8, rows[..100]));
        var corrupt = StoredZlib(rows);
        corrupt[2] = 0x07; // reserved block type 3
        yield return Image("png_corrupt_deflate.png", "corrupt compressed data", Png(8, 8, 2, 8, [], idat: corrupt));
        var indices = new byte[8 * 9];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                indices[y * 9 + 1 + x] = (byte)(x < 4 ? 1 : 200);
        yield return Image("png_palette_missing.png", "without PLTE", Png(8, 8, 3, 8, indices));
        yield return Image("png_palette_index_out_of_range.png", "", Png(8, 8, 3, 8, indices,
            s => PngWriter.WriteChunk(s, "PLTE", [255, 0, 0, 0, 255, 0])), "none");
        yield return Image("png_palette_too_long.png", "invalid PLTE length", Png(8, 8, 3, 8, indices,
            s => PngWriter.WriteChunk(s, "PLTE", new byte[771])));
        yield return Image("png_unknown_critical_chunk.png", "unknown critical chunk 'ABCD'", Png(8, 8, 2, 8, rows,
            s => PngWriter.WriteChunk(s, "ABCD", [1, 2, 3])));
        yield return Image("png_header_only.png", "truncated file", good[..33]);
    }

    // ---- JPEG: surgery on the committed 2 KB sample.

    private static IEnumerable<(HostileCase, IReadOnlyList<(string, byte[])>)> Jpegs()
    {
        var good = System.IO.File.ReadAllBytes(RepoData.Path("images/tiny_420_q90.jpg"));
        int sof = JpegDecoderTests.FindMarker(good, 0xC0), dqt = JpegDecoderTests.FindMarker(good, 0xDB);
        int sofLength = (good[sof + 2] << 8) | good[sof + 3];
        yield return Image("jpg_truncated.jpg", "JPEG", good[..(good.Length / 2)]);
        yield return Image("jpg_max_size.jpg", "exceeds the limit", Patch(good, sof + 5, 0xFF, 0xFF, 0xFF, 0xFF));
        yield return Image("jpg_forged_size_tiny_data.jpg", "forged header", Patch(good, sof + 5, 10000 >> 8, 10000 & 255, 10000 >> 8, 10000 & 255));
        yield return Image("jpg_sos_before_sof.jpg", "SOS before SOF", [.. good[..sof], .. good[(sof + 2 + sofLength)..]]);
        yield return Image("jpg_segment_length_one.jpg", "invalid segment length 1", Patch(good, dqt + 2, 0, 1));
        yield return Image("jpg_segment_past_end.jpg", "truncated marker segment", Patch(good, dqt + 2, 0xFF, 0xFF));
        yield return Image("jpg_12_bit.jpg", "12-bit", Patch(good, sof + 4, 12));
        yield return Image("jpg_lossless.jpg", "unsupported coding process", Patch(good, sof + 1, 0xC3));
        yield return Image("jpg_zero_sampling.jpg", "invalid sampling factors", Patch(good, sof + 11, 0x00));
        yield return Image("jpg_quant_id_out_of_range.jpg", "quantization table id 5", Patch(good, sof + 12, 5));
        yield return Image("jpg_two_frames.jpg", "more than one frame", [.. good[..(sof + 2 + sofLength)], .. good[sof..]]);
        yield return Image("jpg_eoi_only.jpg", "EOI before any image data", [0xFF, 0xD8, 0xFF, 0xD9]);
        yield return Image("jpg_no_huffman_tables.jpg", "Huffman table", StripMarkers(good, 0xC4));
    }

    private static byte[] StripMarkers(byte[] jpeg, byte marker)
    {
        var result = new List<byte>(jpeg[..2]);
        int pos = 2;
        while (pos + 4 <= jpeg.Length && jpeg[pos] == 0xFF && jpeg[pos + 1] != 0xDA)
        {
            int length = (jpeg[pos + 2] << 8) | jpeg[pos + 3];
            if (jpeg[pos + 1] != marker)
                result.AddRange(jpeg[pos..(pos + 2 + length)]);
            pos += 2 + length;
        }
        result.AddRange(jpeg[pos..]);
        return [.. result];
    }

    // ---- BMP and PPM: tiny headers written field by field.

    internal static byte[] Bmp(int width, int height, int bitCount = 24, uint compression = 0, uint headerSize = 40, uint colorsUsed = 0, uint? pixelOffset = null)
    {
        int paletteBytes = bitCount <= 8 ? (int)(colorsUsed == 0 ? 1u << bitCount : colorsUsed) * 4 : 0;
        long rowBytes = ((long)Math.Abs(width) * bitCount + 31) / 32 * 4;
        int pixels = (int)Math.Min(rowBytes * Math.Abs((long)height), 4096);
        var d = new byte[14 + 40 + paletteBytes + pixels];
        d[0] = (byte)'B';
        d[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(d.AsSpan(2), d.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(10), pixelOffset ?? (uint)(54 + paletteBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(14), headerSize);
        BinaryPrimitives.WriteInt32LittleEndian(d.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(d.AsSpan(22), height);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(26), 1);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(28), (ushort)bitCount);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(30), compression);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(46), colorsUsed);
        for (int i = 0; i < paletteBytes; i++)
            d[54 + i] = (byte)(i * 37);
        for (int i = 54 + paletteBytes; i < d.Length; i++)
            d[i] = (byte)(bitCount == 8 ? 200 : i * 13);
        return d;
    }

    private static IEnumerable<(HostileCase, IReadOnlyList<(string, byte[])>)> Bmps()
    {
        var good = Bmp(8, 8);
        yield return Image("bmp_truncated_header.bmp", "truncated header", good[..20]);
        yield return Image("bmp_truncated_pixels.bmp", "truncated pixel data", good[..100]);
        yield return Image("bmp_huge_dimensions.bmp", "exceeds the limit", Bmp(100000, 100000));
        yield return Image("bmp_height_int_min.bmp", "exceeds the limit", Bmp(8, int.MinValue));
        yield return Image("bmp_negative_width.bmp", "invalid dimensions", Bmp(-8, 8));
        yield return Image("bmp_rle.bmp", "unsupported compression 1", Bmp(8, 8, 8, compression: 1));
        yield return Image("bmp_16_bit.bmp", "unsupported bit depth 16", Bmp(8, 8, 16));
        yield return Image("bmp_header_size_13.bmp", "unsupported header size 13", Bmp(8, 8, headerSize: 13));
        yield return Image("bmp_pixel_offset_huge.bmp", "truncated pixel data", Bmp(8, 8, pixelOffset: 0xFFFFFFF0));
        yield return Image("bmp_palette_index_out_of_range.bmp", "", Bmp(8, 8, 8, colorsUsed: 2), "none");
    }

    private static byte[] Pnm(string header, int sampleBytes) =>
        [.. Encoding.ASCII.GetBytes(header), .. Enumerable.Range(0, sampleBytes).Select(i => (byte)(i * 7))];

    private static IEnumerable<(HostileCase, IReadOnlyList<(string, byte[])>)> Pnms()
    {
        yield return Image("ppm_truncated.ppm", "truncated pixel data", Pnm("P6\n8 8\n255\n", 100));
        yield return Image("ppm_huge_dimensions.ppm", "exceeds the limit", Pnm("P6\n99999 99999\n255\n", 16));
        yield return Image("ppm_maxval_zero.ppm", "invalid maxval 0", Pnm("P6\n8 8\n0\n", 192));
        yield return Image("ppm_plain_text.ppm", "not supported", Pnm("P3\n1 1\n255\n1 2 3\n", 0));
        yield return Image("ppm_number_too_large.ppm", "header number too large", Pnm("P6\n12345678901234 8\n255\n", 16));
        yield return Image("ppm_endless_comment.ppm", "truncated or malformed header", Pnm("P6\n8 8\n# a comment with no end", 0));
        yield return Image("pgm_samples_above_maxval.pgm", "", Pnm("P5\n8 8\n100\n", 64), "none");
    }
}
