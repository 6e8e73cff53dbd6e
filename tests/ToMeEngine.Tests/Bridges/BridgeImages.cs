using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Tiff.Constants;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing.Processors.Quantization;
using ToMe.ImageSharp;
using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Bridges;

/// <summary>
/// Small GIF, WebP and TIFF files made from one test picture, all lossless: the picture is first reduced to the 256 colours
/// of a 3-3-2 palette, which a GIF holds exactly, so each file decodes to exactly <see cref="Source"/>.
/// </summary>
internal static class BridgeImages
{
    public static RgbImage Source { get; } = Quantize(ImageDecoder.Decode(RepoData.Path("images/png_rgb.png")));

    private static readonly Color[] Palette = Enumerable.Range(0, 256)
        .Select(i => Color.FromRgb(Level(i >> 5, 7), Level((i >> 2) & 7, 7), Level(i & 3, 3))).ToArray();

    private static byte Level(int step, int steps) => (byte)(step * 255 / steps);

    private static RgbImage Quantize(RgbImage image)
    {
        var pixels = (byte[])image.Pixels.Clone();
        for (int i = 0; i < pixels.Length; i += 3)
        {
            pixels[i] = Level(pixels[i] >> 5, 7);
            pixels[i + 1] = Level(pixels[i + 1] >> 5, 7);
            pixels[i + 2] = Level(pixels[i + 2] >> 6, 3);
        }
        return new RgbImage(image.Width, image.Height, pixels);
    }

    public static byte[] Gif() => Encode(new GifEncoder
    {
        Quantizer = new PaletteQuantizer(Palette, new QuantizerOptions { Dither = null, MaxColors = 256 }),
        ColorTableMode = GifColorTableMode.Global,
    });

    public static byte[] WebP() => Encode(new WebpEncoder { FileFormat = WebpFileFormatType.Lossless });

    public static byte[] Tiff() => Encode(new TiffEncoder { Compression = TiffCompression.Lzw, BitsPerPixel = TiffBitsPerPixel.Bit24 });

    private static byte[] Encode(SixLabors.ImageSharp.Formats.IImageEncoder encoder)
    {
        using var image = Source.ToImageSharp();
        using var stream = new MemoryStream();
        image.Save(stream, encoder);
        return stream.ToArray();
    }

    public static string Write(string dir, string name, byte[] data)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, data);
        return path;
    }
}
