using System.Runtime.InteropServices;
using SkiaSharp;
using ToMe.Imaging;

namespace ToMe.SkiaSharp;

/// <summary>
/// <see cref="ToMeEngine"/> on SkiaSharp bitmaps: the pixels are converted to unpremultiplied RGBA by Skia, alpha is dropped
/// (as PIL's <c>convert("RGB")</c> does), and the result is classified exactly as the same <see cref="RgbImage"/> would be.
/// </summary>
public static class SkiaSharpExtensions
{
    /// <summary>The bitmap's pixels (any colour type) as an <see cref="RgbImage"/>.</summary>
    /// <exception cref="ArgumentException">The bitmap has no pixels, or Skia cannot convert its colour type.</exception>
    public static RgbImage ToRgbImage(this SKBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        using var pixmap = bitmap.PeekPixels() ?? throw new ArgumentException("the bitmap has no pixels to read", nameof(bitmap));
        return pixmap.ToRgbImage();
    }

    /// <summary>An image's pixels as an <see cref="RgbImage"/> (a GPU-backed image is read back first).</summary>
    public static RgbImage ToRgbImage(this SKImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var bitmap = SKBitmap.FromImage(image);
        return bitmap.ToRgbImage();
    }

    internal static RgbImage ToRgbImage(this SKPixmap pixmap)
    {
        int width = pixmap.Width, height = pixmap.Height;
        var rgba = new byte[checked(width * height * 4)];
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        try
        {
            if (!pixmap.ReadPixels(info, handle.AddrOfPinnedObject(), info.RowBytes, 0, 0))
                throw new ArgumentException($"Skia cannot convert {pixmap.ColorType}/{pixmap.AlphaType} pixels to RGBA");
        }
        finally
        {
            handle.Free();
        }
        var rgb = new byte[width * height * 3];
        for (int i = 0, o = 0; o < rgb.Length; i += 4, o += 3)
        {
            rgb[o] = rgba[i];
            rgb[o + 1] = rgba[i + 1];
            rgb[o + 2] = rgba[i + 2];
        }
        return new RgbImage(width, height, rgb);
    }

    /// <summary>A Skia copy of <paramref name="image"/> (opaque RGBA), to draw on or encode.</summary>
    public static SKBitmap ToSKBitmap(this RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, o = 0; i < image.Pixels.Length; i += 3, o += 4)
        {
            rgba[o] = image.Pixels[i];
            rgba[o + 1] = image.Pixels[i + 1];
            rgba[o + 2] = image.Pixels[i + 2];
            rgba[o + 3] = 255;
        }
        Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        return bitmap;
    }

    /// <inheritdoc cref="ToMeEngine.Classify(RgbImage, int)"/>
    public static IReadOnlyList<Prediction> Classify(this ToMeEngine engine, SKBitmap bitmap, int topK = 5) =>
        engine.Classify(bitmap.ToRgbImage(), topK);

    /// <inheritdoc cref="ToMeEngine.ClassifyAsync(RgbImage, int, CancellationToken)"/>
    public static Task<IReadOnlyList<Prediction>> ClassifyAsync(this ToMeEngine engine, SKBitmap bitmap, int topK = 5, CancellationToken cancellationToken = default) =>
        engine.ClassifyAsync(bitmap.ToRgbImage(), topK, cancellationToken);

    /// <inheritdoc cref="ToMeEngine.ClassifyBatch(IEnumerable{RgbImage}, int)"/>
    public static IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(this ToMeEngine engine, IEnumerable<SKBitmap> bitmaps, int topK = 5) =>
        engine.ClassifyBatch(bitmaps.Select(ToRgbImage), topK);

    /// <inheritdoc cref="ToMeEngine.ExtractFeatures(RgbImage)"/>
    public static DenseFeatures ExtractFeatures(this ToMeEngine engine, SKBitmap bitmap) =>
        engine.ExtractFeatures(bitmap.ToRgbImage());

    /// <inheritdoc cref="ToMeEngine.ExtractFeaturesAsync(RgbImage, CancellationToken)"/>
    public static Task<DenseFeatures> ExtractFeaturesAsync(this ToMeEngine engine, SKBitmap bitmap, CancellationToken cancellationToken = default) =>
        engine.ExtractFeaturesAsync(bitmap.ToRgbImage(), cancellationToken);
}
