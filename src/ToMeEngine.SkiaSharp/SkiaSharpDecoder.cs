using SkiaSharp;
using ToMe.Imaging;

namespace ToMe.SkiaSharp;

/// <summary>
/// Decodes GIF (the first frame), WebP and arithmetic-coded JPEG for <see cref="ImageDecoder"/> through Skia; list it in
/// <see cref="DecodeOptions.ExternalDecoders"/>. Skia has no TIFF codec (ToMeEngine.ImageSharp reads TIFF). Where Skia's native
/// library cannot load, <see cref="CanDecode"/> says no, so the next decoder in the list is asked. The pixels are Skia's, which
/// may differ slightly from PIL's (only the built-in decoders are exact to timm's preprocessing).
/// </summary>
public sealed class SkiaSharpDecoder : IExternalImageDecoder
{
    private static readonly Lazy<string?> unavailable = new(Probe);

    /// <summary>The decoder (stateless: one instance serves every thread).</summary>
    public static SkiaSharpDecoder Instance { get; } = new();

    /// <summary>"SkiaSharp", for messages.</summary>
    public string Name => "SkiaSharp";

    /// <summary>Why Skia's native library cannot be used here, or null when it can.</summary>
    public static string? Unavailable => unavailable.Value;

    /// <summary>True for GIF, WebP and arithmetic-coded JPEG, where Skia's native library loads (see <see cref="Unavailable"/>).</summary>
    public bool CanDecode(ImageFormat format) =>
        format is ImageFormat.Gif or ImageFormat.WebP or ImageFormat.JpegArithmetic && Unavailable is null;

    /// <summary>Decodes GIF (the first frame), WebP or arithmetic-coded JPEG to RGB, alpha dropped.</summary>
    /// <exception cref="InvalidImageException">Skia cannot decode the data, or it declares more than <see cref="DecodeOptions.MaxPixels"/> pixels.</exception>
    public RgbImage Decode(byte[] data, ImageFormat format, DecodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        var name = format.DisplayName();
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var created)
            ?? throw new InvalidImageException($"{name} (decoded by SkiaSharp): {created}");
        // Dimensions first, so a small file declaring a huge picture is refused before anything is allocated.
        options.CheckSize(name, codec.Info.Width, codec.Info.Height);
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
            throw new InvalidImageException($"{name} (decoded by SkiaSharp): {result}");
        return bitmap.ToRgbImage();
    }

    private static string? Probe()
    {
        try
        {
            using var bitmap = new SKBitmap(1, 1);
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException or EntryPointNotFoundException)
        {
            return $"SkiaSharp's native library cannot be loaded: {e.GetBaseException().Message}";
        }
    }
}
