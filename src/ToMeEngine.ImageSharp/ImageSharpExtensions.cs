using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using ToMe.Imaging;

namespace ToMe.ImageSharp;

/// <summary>
/// <see cref="ToMeEngine"/> on ImageSharp images: the pixels are copied into an <see cref="RgbImage"/> and classified exactly as
/// that would be (the same preprocessing, the same answer). The root frame of a multi-frame image is used.
/// </summary>
public static class ImageSharpExtensions
{
    /// <summary>The pixels of the root frame as an <see cref="RgbImage"/>.</summary>
    public static RgbImage ToRgbImage(this Image<Rgb24> image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var pixels = new byte[checked(image.Width * image.Height * 3)];
        image.CopyPixelDataTo(pixels);
        return new RgbImage(image.Width, image.Height, pixels);
    }

    /// <summary>Any ImageSharp image (any pixel type) as an <see cref="RgbImage"/>; alpha is dropped, as PIL's <c>convert("RGB")</c> does.</summary>
    public static RgbImage ToRgbImage(this Image image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image is Image<Rgb24> rgb)
            return rgb.ToRgbImage();
        using var converted = image.CloneAs<Rgb24>();
        return converted.ToRgbImage();
    }

    /// <summary>An ImageSharp copy of <paramref name="image"/> (to save or draw on, e.g. a merge visualization).</summary>
    public static Image<Rgb24> ToImageSharp(this RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return Image.LoadPixelData<Rgb24>(image.Pixels, image.Width, image.Height);
    }

    /// <inheritdoc cref="ToMeEngine.Classify(RgbImage, int)"/>
    public static IReadOnlyList<Prediction> Classify(this ToMeEngine engine, Image<Rgb24> image, int topK = 5) =>
        engine.Classify(image.ToRgbImage(), topK);

    /// <inheritdoc cref="ToMeEngine.ClassifyAsync(RgbImage, int, CancellationToken)"/>
    public static Task<IReadOnlyList<Prediction>> ClassifyAsync(this ToMeEngine engine, Image<Rgb24> image, int topK = 5, CancellationToken cancellationToken = default) =>
        engine.ClassifyAsync(image.ToRgbImage(), topK, cancellationToken);

    /// <inheritdoc cref="ToMeEngine.ClassifyBatch(IEnumerable{RgbImage}, int)"/>
    public static IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(this ToMeEngine engine, IEnumerable<Image<Rgb24>> images, int topK = 5) =>
        engine.ClassifyBatch(images.Select(ToRgbImage), topK);

    /// <inheritdoc cref="ToMeEngine.ExtractFeatures(RgbImage)"/>
    public static DenseFeatures ExtractFeatures(this ToMeEngine engine, Image<Rgb24> image) =>
        engine.ExtractFeatures(image.ToRgbImage());

    /// <inheritdoc cref="ToMeEngine.ExtractFeaturesAsync(RgbImage, CancellationToken)"/>
    public static Task<DenseFeatures> ExtractFeaturesAsync(this ToMeEngine engine, Image<Rgb24> image, CancellationToken cancellationToken = default) =>
        engine.ExtractFeaturesAsync(image.ToRgbImage(), cancellationToken);
}
