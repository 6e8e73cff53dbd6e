using System.Buffers.Binary;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using ToMe.Imaging;

namespace ToMe.ImageSharp;

/// <summary>
/// Decodes GIF (the first frame), WebP and TIFF for <see cref="ImageDecoder"/> through ImageSharp; list it in
/// <see cref="DecodeOptions.ExternalDecoders"/>. Fully managed. The pixels are ImageSharp's, which may differ slightly from
/// PIL's (only the built-in decoders are exact to timm's preprocessing).
/// </summary>
public sealed class ImageSharpDecoder : IExternalImageDecoder
{
    /// <summary>The decoder (stateless: one instance serves every thread).</summary>
    public static ImageSharpDecoder Instance { get; } = new();

    /// <summary>"ImageSharp", for messages.</summary>
    public string Name => "ImageSharp";

    /// <summary>True for GIF, WebP and TIFF.</summary>
    public bool CanDecode(ImageFormat format) => format is ImageFormat.Gif or ImageFormat.WebP or ImageFormat.Tiff;

    /// <summary>Decodes GIF (the first frame), WebP or TIFF to RGB, alpha dropped.</summary>
    /// <exception cref="InvalidImageException">ImageSharp cannot decode the data, or it declares more than <see cref="DecodeOptions.MaxPixels"/> pixels.</exception>
    public RgbImage Decode(byte[] data, ImageFormat format, DecodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        var name = format.DisplayName();
        try
        {
            CheckComplete(data, format, name);
            // Dimensions first, so a small file declaring a huge picture is refused before ImageSharp allocates it.
            var info = Image.Identify(data) ?? throw new InvalidImageException($"{name}: ImageSharp does not recognise the data");
            options.CheckSize(name, info.Width, info.Height);
            using var image = Image.Load<Rgb24>(data);
            return image.ToRgbImage();
        }
        catch (Exception e) when (e is ImageFormatException or NotSupportedException or InvalidDataException or ArgumentException
                                      or IndexOutOfRangeException or InvalidOperationException or OverflowException)
        {
            throw new InvalidImageException($"{name} (decoded by ImageSharp): {e.Message}", e);
        }
    }

    // ImageSharp fills what a truncated GIF or WebP lacks; the engine refuses truncated files, as its own decoders do.
    private static void CheckComplete(byte[] data, ImageFormat format, string name)
    {
        if (format == ImageFormat.Gif && data[^1] != 0x3B)
            throw new InvalidImageException($"{name}: truncated (no trailer at the end)");
        if (format == ImageFormat.WebP && 8L + BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4)) > data.Length)
            throw new InvalidImageException($"{name}: truncated ({data.Length} bytes; its RIFF header declares {8L + BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4))})");
    }
}
