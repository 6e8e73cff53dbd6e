using System.Collections.Concurrent;
using ToMe.Imaging;
using ToMe.ImageSharp;
using ToMe.SkiaSharp;

namespace ToMe.Cli;

/// <summary>
/// How the commands decode images: the built-in decoders (exact to PIL), then SkiaSharp (GIF, WebP, arithmetic-coded JPEG),
/// then ImageSharp (TIFF; GIF and WebP where Skia's native library cannot load). Once per format, a note on stderr says
/// which library decoded it and that its pixels are not PIL's.
/// </summary>
internal static class BridgeDecoding
{
    private static readonly ConcurrentDictionary<ImageFormat, bool> noted = new();

    /// <summary>The formats the commands read, for their help.</summary>
    public const string Formats = ImageFormats.BuiltIn + " (exact to PIL); GIF, WebP, TIFF and arithmetic-coded JPEG through SkiaSharp or ImageSharp";

    public static DecodeOptions Options { get; } = DecodeOptions.Default with
    {
        ExternalDecoders = [new Noting(SkiaSharpDecoder.Instance), new Noting(ImageSharpDecoder.Instance)],
    };

    private sealed class Noting(IExternalImageDecoder inner) : IExternalImageDecoder
    {
        public string Name => inner.Name;

        public bool CanDecode(ImageFormat format) => inner.CanDecode(format);

        public RgbImage Decode(byte[] data, ImageFormat format, DecodeOptions options)
        {
            if (noted.TryAdd(format, true))
                Console.Error.WriteLine($"note: {format.DisplayName()} decoded by {inner.Name}; only the built-in decoders ({ImageFormats.BuiltIn}) give PIL's exact pixels");
            return inner.Decode(data, format, options);
        }
    }
}
