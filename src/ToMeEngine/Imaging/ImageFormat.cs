using System.Buffers.Binary;

namespace ToMe.Imaging;

/// <summary>
/// Formats <see cref="ImageDecoder.Sniff"/> recognises from their leading bytes. JPEG, PNG, BMP and PNM have built-in
/// decoders; the others are named in errors and decoded only through an <see cref="IExternalImageDecoder"/>.
/// </summary>
public enum ImageFormat
{
    /// <summary>No format the sniffer knows starts this way (not an image, or a truncated one).</summary>
    Unknown,

    /// <summary>Baseline or progressive Huffman-coded JPEG: built in, with libjpeg-turbo's pixels.</summary>
    Jpeg,

    /// <summary>PNG, every colour type and bit depth, interlaced or not: built in.</summary>
    Png,

    /// <summary>Windows BMP: built in.</summary>
    Bmp,

    /// <summary>Binary PPM (P6) and PGM (P5): built in.</summary>
    Pnm,

    /// <summary>GIF (<c>GIF87a</c>, <c>GIF89a</c>): external decoders only.</summary>
    Gif,

    /// <summary>WebP (<c>RIFF….WEBP</c>): external decoders only.</summary>
    WebP,

    /// <summary>TIFF and BigTIFF, either byte order: external decoders only.</summary>
    Tiff,

    /// <summary>HEIF / HEIC (an ISO <c>ftyp</c> box with a HEIF brand): external decoders only.</summary>
    Heif,

    /// <summary>AVIF (an ISO <c>ftyp</c> box with an AVIF brand): external decoders only.</summary>
    Avif,

    /// <summary>JPEG XL, codestream or container: external decoders only.</summary>
    JpegXl,

    /// <summary>A JPEG whose frame header (SOF9–SOF15) says arithmetic coding, which the built-in decoder does not implement.</summary>
    JpegArithmetic,

    /// <summary>JPEG 2000, codestream or JP2 container: external decoders only.</summary>
    Jpeg2000,
}

/// <summary>Names and magic bytes of <see cref="ImageFormat"/>.</summary>
public static class ImageFormats
{
    /// <summary>What the built-in decoders read, for messages.</summary>
    public const string BuiltIn = "JPEG (Huffman-coded), PNG, BMP, PPM/PGM";

    /// <summary>True for the formats the engine decodes itself, exactly as PIL does.</summary>
    public static bool IsBuiltIn(this ImageFormat format) => format is ImageFormat.Jpeg or ImageFormat.Png or ImageFormat.Bmp or ImageFormat.Pnm;

    /// <summary>The format's usual name ("GIF", "JPEG XL", "arithmetic-coded JPEG").</summary>
    public static string DisplayName(this ImageFormat format) => format switch
    {
        ImageFormat.Jpeg => "JPEG",
        ImageFormat.Png => "PNG",
        ImageFormat.Bmp => "BMP",
        ImageFormat.Pnm => "PPM/PGM",
        ImageFormat.Gif => "GIF",
        ImageFormat.WebP => "WebP",
        ImageFormat.Tiff => "TIFF",
        ImageFormat.Heif => "HEIF",
        ImageFormat.Avif => "AVIF",
        ImageFormat.JpegXl => "JPEG XL",
        ImageFormat.JpegArithmetic => "arithmetic-coded JPEG",
        ImageFormat.Jpeg2000 => "JPEG 2000",
        _ => "unknown",
    };

    internal static ImageFormat Sniff(ReadOnlySpan<byte> d)
    {
        if (d.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
            return JpegCodingOf(d);
        if (d.StartsWith(PngDecoder.Signature))
            return ImageFormat.Png;
        if (d.StartsWith("BM"u8))
            return ImageFormat.Bmp;
        if (d.Length >= 3 && d[0] == (byte)'P' && d[1] is >= (byte)'1' and <= (byte)'7' && d[2] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
            return ImageFormat.Pnm;
        if (d.StartsWith("GIF87a"u8) || d.StartsWith("GIF89a"u8))
            return ImageFormat.Gif;
        if (d.Length >= 12 && d.StartsWith("RIFF"u8) && d[8..12].SequenceEqual("WEBP"u8))
            return ImageFormat.WebP;
        // Classic and BigTIFF, both byte orders.
        if (d.StartsWith("II*\0"u8) || d.StartsWith("MM\0*"u8) || d.StartsWith("II+\0"u8) || d.StartsWith("MM\0+"u8))
            return ImageFormat.Tiff;
        if (d.StartsWith((ReadOnlySpan<byte>)[0xFF, 0x0A]) || d.StartsWith((ReadOnlySpan<byte>)[0, 0, 0, 0x0C, (byte)'J', (byte)'X', (byte)'L', (byte)' ', 0x0D, 0x0A, 0x87, 0x0A]))
            return ImageFormat.JpegXl;
        if (d.StartsWith((ReadOnlySpan<byte>)[0xFF, 0x4F, 0xFF, 0x51]) || d.StartsWith((ReadOnlySpan<byte>)[0, 0, 0, 0x0C, (byte)'j', (byte)'P', (byte)' ', (byte)' ', 0x0D, 0x0A, 0x87, 0x0A]))
            return ImageFormat.Jpeg2000;
        if (d.Length >= 12 && d[4..8].SequenceEqual("ftyp"u8))
            return IsoBrand(d);
        return ImageFormat.Unknown;
    }

    // HEIF and AVIF share the ISO base media file format: an 'ftyp' box whose major or compatible brands say which.
    private static ImageFormat IsoBrand(ReadOnlySpan<byte> d)
    {
        var boxSize = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(d), (uint)d.Length);
        bool heif = false;
        for (int at = 8; at + 4 <= boxSize; at += at == 8 ? 8 : 4) // major brand, minor version, compatible brands
        {
            switch (System.Text.Encoding.ASCII.GetString(d.Slice(at, 4)))
            {
                case "avif" or "avis":
                    return ImageFormat.Avif;
                case "heic" or "heix" or "hevc" or "hevx" or "heim" or "heis" or "hevm" or "hevs" or "mif1" or "msf1":
                    heif = true;
                    break;
            }
        }
        return heif ? ImageFormat.Heif : ImageFormat.Unknown;
    }

    // Walks the marker segments up to the frame header: SOF9–SOF15 (but not DHT's neighbours) mean arithmetic coding.
    private static ImageFormat JpegCodingOf(ReadOnlySpan<byte> d)
    {
        int at = 2;
        for (int segments = 0; segments < 1000 && at + 4 <= d.Length; segments++)
        {
            if (d[at] != 0xFF)
                break;
            byte marker = d[at + 1];
            if (marker == 0xFF)
            {
                at++; // fill byte
                continue;
            }
            if (marker is 0xC9 or 0xCA or 0xCB or 0xCD or 0xCE or 0xCF)
                return ImageFormat.JpegArithmetic;
            if (marker is (>= 0xC0 and <= 0xC7) or 0xDA or 0xD9)
                break;
            at += 2 + BinaryPrimitives.ReadUInt16BigEndian(d[(at + 2)..]);
        }
        return ImageFormat.Jpeg;
    }
}
