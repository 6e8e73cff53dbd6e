using ToMe.Imaging.Jpeg;

namespace ToMe.Imaging;

/// <summary>Formats <see cref="ImageDecoder"/> recognises from their leading bytes.</summary>
public enum ImageFormat { Unknown, Jpeg, Png, Bmp, Pnm }

/// <summary>
/// Decodes JPEG, PNG, BMP and binary PPM/PGM into <see cref="RgbImage"/>, with the pixels PIL produces
/// for <c>Image.open(f).convert("RGB")</c> (JPEG through libjpeg-turbo's default arithmetic). The format is
/// sniffed from magic bytes, never from the file name. EXIF orientation is ignored, as timm ignores it.
/// Every failure is an <see cref="InvalidImageException"/>.
/// </summary>
public static class ImageDecoder
{
    public static ImageFormat Sniff(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
            return ImageFormat.Jpeg;
        if (data.Length >= 8 && data[..8].SequenceEqual(PngDecoder.Signature))
            return ImageFormat.Png;
        if (data.Length >= 2 && data[0] == (byte)'B' && data[1] == (byte)'M')
            return ImageFormat.Bmp;
        if (data.Length >= 3 && data[0] == (byte)'P' && data[1] is >= (byte)'1' and <= (byte)'7' && data[2] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
            return ImageFormat.Pnm;
        return ImageFormat.Unknown;
    }

    public static RgbImage Decode(ReadOnlySpan<byte> data, DecodeOptions? options = null) =>
        Decode(data.ToArray(), options);

    public static RgbImage Decode(byte[] data, DecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        options ??= DecodeOptions.Default;
        return Guarded(data, () => Sniff(data) switch
        {
            ImageFormat.Jpeg => JpegDecoder.Decode(data, options),
            ImageFormat.Png => PngDecoder.Decode(data, options),
            ImageFormat.Bmp => BmpDecoder.Decode(data, options),
            ImageFormat.Pnm => PnmDecoder.Decode(data, options),
            _ => throw new InvalidImageException(
                $"unknown image format (first bytes {Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)))}); supported: JPEG, PNG, BMP, PPM/PGM"),
        });
    }

    /// <summary>
    /// Decodes into pooled planes; a JPEG fills only the pixels <paramref name="regionOf"/> (called with the
    /// picture's size) asks for. The caller disposes the result.
    /// </summary>
    internal static PlanarImage DecodePlanar(byte[] data, DecodeOptions options, Func<int, int, PixelRegion>? regionOf)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (Sniff(data) != ImageFormat.Jpeg)
            return PlanarImage.From(Decode(data, options));
        return Guarded(data, () => JpegDecoder.DecodePlanar(data, options, regionOf));
    }

    private static T Guarded<T>(byte[] data, Func<T> decode)
    {
        if (data.Length == 0)
            throw new InvalidImageException("empty input (0 bytes)");
        try
        {
            return decode();
        }
        catch (InvalidImageException)
        {
            throw;
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidDataException
                                      or OverflowException or EndOfStreamException)
        {
            // Decoders validate as they go; this net turns a missed check into the documented error.
            throw new InvalidImageException($"corrupt image data ({e.GetType().Name}: {e.Message})", e);
        }
    }

    public static RgbImage Decode(Stream stream, DecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= DecodeOptions.Default;
        return Decode(ReadAll(stream, options), options);
    }

    public static RgbImage Decode(string path, DecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= DecodeOptions.Default;
        return FromFile(path, options, data => Decode(data, options));
    }

    /// <summary>A stream's bytes to its end, refused past <see cref="DecodeOptions.MaxFileBytes"/>.</summary>
    internal static byte[] ReadAll(Stream stream, DecodeOptions options)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + n > options.MaxFileBytes)
                throw new InvalidImageException($"input larger than {options.MaxFileBytes} bytes (DecodeOptions.MaxFileBytes)");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>
    /// Reads an image file (refused past <see cref="DecodeOptions.MaxFileBytes"/>) and hands its bytes to
    /// <paramref name="decode"/>; an <see cref="InvalidImageException"/> from it names the file.
    /// </summary>
    internal static T FromFile<T>(string path, DecodeOptions options, Func<byte[], T> decode)
    {
        var length = new FileInfo(path).Length;
        if (length > options.MaxFileBytes)
            throw new InvalidImageException($"{path}: {length} bytes exceeds DecodeOptions.MaxFileBytes");
        try
        {
            return decode(File.ReadAllBytes(path));
        }
        catch (InvalidImageException e)
        {
            throw new InvalidImageException($"{path}: {e.Message}", e);
        }
    }
}
