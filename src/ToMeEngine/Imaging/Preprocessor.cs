using System.Numerics;

namespace ToMe.Imaging;

/// <summary>
/// timm's eval transform as torchvision 0.14 + PIL run it: <c>Resize(scale_size)</c> on the shorter side
/// (longer side <c>int(size * long / short)</c>), <c>CenterCrop(img_size)</c> (offset
/// <c>int(round((h - crop) / 2.0))</c>, zero padding when the picture is smaller), <c>ToTensor</c>
/// (<c>x / 255</c> in float32) and <c>Normalize</c> (<c>(x - mean) / std</c>). Output: float32 CHW.
/// Only the resized pixels inside the crop are computed; they equal those of the full resize.
/// Instances are immutable and thread-safe.
/// </summary>
public sealed class Preprocessor
{
    private readonly PreprocessConfig cfg;

    public Preprocessor(PreprocessConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        cfg = config with { Mean = (float[])config.Mean.Clone(), Std = (float[])config.Std.Clone() };
    }

    public PreprocessConfig Config => cfg;

    /// <summary>Floats per image: 3 x ImgSize x ImgSize.</summary>
    public int OutputLength => 3 * cfg.ImgSize * cfg.ImgSize;

    /// <summary>torchvision's <c>_compute_resized_output_size</c> for an int size: (width, height).</summary>
    public static (int Width, int Height) ResizedSize(int width, int height, int size)
    {
        if (width <= height)
            return (size, (int)((double)(size * (long)height) / width));
        return ((int)((double)(size * (long)width) / height), size);
    }

    /// <summary>torchvision CenterCrop offset along one axis; negative when the axis is padded.</summary>
    internal static int CropOffset(int size, int crop) =>
        crop > size ? -((crop - size) / 2) : (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);

    /// <summary>The 8-bit picture after resize and center crop (ImgSize x ImgSize), before ToTensor.</summary>
    public RgbImage ResizeAndCrop(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var s = cfg.ImgSize;
        var (rw, rh) = ResizedSize(image.Width, image.Height, cfg.ScaleSize);
        if (rw <= 0 || rh <= 0)
            throw new ArgumentException($"image {image.Width}x{image.Height} is too thin to resize to {cfg.ScaleSize}");
        int ox = CropOffset(rw, s), oy = CropOffset(rh, s);
        int wx0 = Math.Max(ox, 0), wy0 = Math.Max(oy, 0);
        int ww = Math.Min(ox + s, rw) - wx0, wh = Math.Min(oy + s, rh) - wy0;
        var window = Resampler.ResizeWindow(image, rw, rh, cfg.Interpolation, wx0, wy0, ww, wh);
        if (ww == s && wh == s) return window;
        var padded = new RgbImage(s, s);
        for (var y = 0; y < wh; y++)
            window.Pixels.AsSpan(y * ww * 3, ww * 3).CopyTo(padded.Pixels.AsSpan(((wy0 - oy + y) * s + (wx0 - ox)) * 3));
        return padded;
    }

    /// <summary>Preprocesses one picture into <paramref name="chw"/> (length <see cref="OutputLength"/>).</summary>
    public void Run(RgbImage image, Span<float> chw)
    {
        if (chw.Length < OutputLength)
            throw new ArgumentException($"destination holds {chw.Length} floats, need {OutputLength}", nameof(chw));
        ToTensor(ResizeAndCrop(image), chw);
    }

    public float[] Run(RgbImage image)
    {
        var result = new float[OutputLength];
        Run(image, result);
        return result;
    }

    /// <summary>A [N, 3, S, S] batch, the pictures processed in parallel.</summary>
    public float[] RunBatch(IReadOnlyList<RgbImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var n = OutputLength;
        var result = new float[checked(images.Count * n)];
        Parallel.For(0, images.Count, i => Run(images[i], result.AsSpan(i * n, n)));
        return result;
    }

    /// <summary>Deinterleaves into planes, then (x / 255 - mean) / std with the same float32 operations as torch.</summary>
    private void ToTensor(RgbImage crop, Span<float> chw)
    {
        var plane = crop.Width * crop.Height;
        var px = crop.Pixels;
        Span<float> r = chw[..plane], g = chw.Slice(plane, plane), b = chw.Slice(2 * plane, plane);
        for (int i = 0, p = 0; i < plane; i++, p += 3)
        {
            r[i] = px[p];
            g[i] = px[p + 1];
            b[i] = px[p + 2];
        }
        for (var c = 0; c < 3; c++)
            Normalize(chw.Slice(c * plane, plane), cfg.Mean[c], cfg.Std[c]);
    }

    internal static void Normalize(Span<float> x, float mean, float std)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var v255 = new Vector<float>(255f);
            var vm = new Vector<float>(mean);
            var vs = new Vector<float>(std);
            var w = Vector<float>.Count;
            for (; i <= x.Length - w; i += w)
            {
                var v = new Vector<float>(x.Slice(i, w));
                ((v / v255 - vm) / vs).CopyTo(x.Slice(i, w));
            }
        }
        for (; i < x.Length; i++)
            x[i] = (x[i] / 255f - mean) / std;
    }
}
