using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.Intrinsics;

namespace ToMe.Imaging;

/// <summary>
/// timm's eval transform as torchvision 0.14 + PIL run it. The resize depends on the crop mode: <c>center</c>,
/// <c>Resize(scale_size)</c> on the shorter side (longer side <c>int(size * long / short)</c>); <c>squash</c>,
/// <c>Resize((scale_size, scale_size))</c>; <c>border</c>, timm's <c>ResizeKeepRatio(scale_size, longest=1)</c>
/// (each side <c>round(side / max(h / size, w / size))</c>). Then <c>CenterCrop(img_size)</c> (offset
/// <c>int(round((h - crop) / 2.0))</c>, padding <c>(crop - h) // 2</c> before when the picture is smaller: zeros, or
/// for <c>border</c> timm's <c>CenterCropOrPad</c> fill <c>round(255 * mean)</c>), <c>ToTensor</c>
/// (<c>x / 255</c> in float32) and <c>Normalize</c> (<c>(x - mean) / std</c>). Output: float32 CHW.
/// Only the resized pixels inside the crop are computed; they equal those of the full resize.
/// Instances are immutable and thread-safe.
/// </summary>
public sealed class Preprocessor
{
    private readonly PreprocessConfig cfg;

    /// <summary>A preprocessor for <paramref name="config"/> (copied: later changes to its arrays do not affect it).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size, crop fraction or crop mode is out of range.</exception>
    /// <exception cref="ArgumentException">Mean or Std does not have 3 entries, or a Std entry is zero or not finite.</exception>
    public Preprocessor(PreprocessConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        cfg = config with { Mean = (float[])config.Mean.Clone(), Std = (float[])config.Std.Clone() };
    }

    /// <summary>The transform's parameters (a copy of those given).</summary>
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

    /// <summary>The size the picture is resized to before the crop, for the configuration's crop mode: (width, height).</summary>
    internal static (int Width, int Height) ResizedSize(int width, int height, PreprocessConfig config) => config.CropMode switch
    {
        CropMode.Squash => (config.ScaleSize, config.ScaleSize),
        CropMode.Border => LongestSideSize(width, height, config.ScaleSize),
        _ => ResizedSize(width, height, config.ScaleSize),
    };

    /// <summary>timm's <c>ResizeKeepRatio.get_params</c> with <c>longest=1</c>: both sides over the larger ratio, Python's round (half to even).</summary>
    internal static (int Width, int Height) LongestSideSize(int width, int height, int size)
    {
        double ratio = Math.Max((double)height / size, (double)width / size);
        return ((int)Math.Round(width / ratio, MidpointRounding.ToEven), (int)Math.Round(height / ratio, MidpointRounding.ToEven));
    }

    /// <summary>The byte the crop is padded with in channel <paramref name="c"/>: timm's <c>round(255 * mean)</c> for border, else torchvision's 0.</summary>
    private byte PadValue(int c) =>
        cfg.CropMode == CropMode.Border ? (byte)Math.Clamp(Math.Round(255 * (double)cfg.Mean[c], MidpointRounding.ToEven), 0, 255) : (byte)0;

    /// <summary>torchvision CenterCrop offset along one axis; negative when the axis is padded.</summary>
    internal static int CropOffset(int size, int crop) =>
        crop > size ? -((crop - size) / 2) : (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);

    /// <summary>Where the resized picture's crop lands: the resize size, the window of it that is computed and its place in the crop.</summary>
    private readonly record struct Geometry(int ResizedW, int ResizedH, int X0, int Y0, int W, int H, int Dx, int Dy);

    private Geometry Plan(int width, int height)
    {
        var s = cfg.ImgSize;
        var (rw, rh) = ResizedSize(width, height, cfg);
        if (rw <= 0 || rh <= 0)
            throw new ArgumentException($"image {width}x{height} is too thin to resize to {cfg.ScaleSize}");
        int ox = CropOffset(rw, s), oy = CropOffset(rh, s);
        int wx0 = Math.Max(ox, 0), wy0 = Math.Max(oy, 0);
        return new Geometry(rw, rh, wx0, wy0, Math.Min(ox + s, rw) - wx0, Math.Min(oy + s, rh) - wy0, wx0 - ox, wy0 - oy);
    }

    /// <summary>The source pixels preprocessing reads from a picture of this size (the decoder need not produce others).</summary>
    internal PixelRegion SourceRegion(int width, int height)
    {
        var g = Plan(width, height);
        return Resampler.SourceRegion(width, height, g.ResizedW, g.ResizedH, cfg.Interpolation, g.X0, g.Y0, g.W, g.H);
    }

    /// <summary>The resized window as three row-major planes (pooled; the caller returns it).</summary>
    private byte[] ResizeWindow(PlanarImage image, Geometry g)
    {
        var planes = ArrayPool<byte>.Shared.Rent(3 * g.W * g.H);
        try
        {
            Resampler.ResizeWindow(image, g.ResizedW, g.ResizedH, cfg.Interpolation, g.X0, g.Y0, g.W, g.H, planes);
            return planes;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(planes);
            throw;
        }
    }

    /// <summary>The 8-bit picture after resize and center crop (ImgSize x ImgSize), before ToTensor.</summary>
    public RgbImage ResizeAndCrop(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var g = Plan(image.Width, image.Height);
        var s = cfg.ImgSize;
        using var planar = PlanarImage.From(image);
        var planes = ResizeWindow(planar, g);
        try
        {
            var window = Resampler.Interleave(planes.AsSpan(0, 3 * g.W * g.H), g.W, g.H);
            if (g.W == s && g.H == s) return window;
            var padded = new RgbImage(s, s);
            if (cfg.CropMode == CropMode.Border)
                for (var i = 0; i < padded.Pixels.Length; i++)
                    padded.Pixels[i] = PadValue(i % 3);
            for (var y = 0; y < g.H; y++)
                window.Pixels.AsSpan(y * g.W * 3, g.W * 3).CopyTo(padded.Pixels.AsSpan(((g.Dy + y) * s + g.Dx) * 3));
            return padded;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(planes);
        }
    }

    /// <summary>Preprocesses one picture into <paramref name="chw"/> (length <see cref="OutputLength"/>).</summary>
    public void Run(RgbImage image, Span<float> chw)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckDestination(chw);
        using var planar = PlanarImage.From(image);
        Run(planar, chw);
    }

    /// <summary>Preprocesses one picture into a new [3, ImgSize, ImgSize] array (channel-major, normalized).</summary>
    public float[] Run(RgbImage image)
    {
        var result = new float[OutputLength];
        Run(image, result);
        return result;
    }

    /// <summary>
    /// Decodes an image file and preprocesses it into <paramref name="chw"/>, the same values as
    /// <c>Run(ImageDecoder.Decode(encoded))</c>. A JPEG is decoded only as far as the crop needs (inverse DCT
    /// and colour conversion skip what the resize never reads) and straight into the resampler's layout.
    /// </summary>
    /// <exception cref="InvalidImageException">the file cannot be decoded</exception>
    public void Run(byte[] encoded, Span<float> chw, DecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        CheckDestination(chw);
        using var planar = ImageDecoder.DecodePlanar(encoded, options ?? DecodeOptions.Default, SourceRegion);
        Run(planar, chw);
    }

    /// <summary>Decodes an image file held in memory and preprocesses it into a new [3, ImgSize, ImgSize] array, as <see cref="Run(byte[], Span{float}, DecodeOptions?)"/>.</summary>
    /// <exception cref="InvalidImageException">The bytes are not a supported, intact image.</exception>
    public float[] Run(byte[] encoded, DecodeOptions? options = null)
    {
        var result = new float[OutputLength];
        Run(encoded, result, options);
        return result;
    }

    private void CheckDestination(Span<float> chw)
    {
        if (chw.Length < OutputLength)
            throw new ArgumentException($"destination holds {chw.Length} floats, need {OutputLength}", nameof(chw));
    }

    private void Run(PlanarImage image, Span<float> chw)
    {
        var g = Plan(image.Width, image.Height);
        var planes = ResizeWindow(image, g);
        try
        {
            ToTensor(planes, g, chw);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(planes);
        }
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

    /// <summary>
    /// ToTensor + Normalize of the window's planes into the crop: (x / 255 - mean) / std with the same float32
    /// operations as torch; the padding around a window smaller than the crop is <see cref="PadValue"/> before normalization.
    /// </summary>
    private void ToTensor(byte[] planes, Geometry g, Span<float> chw)
    {
        var clock = ImagingProfile.Now();
        var s = cfg.ImgSize;
        var plane = s * s;
        var padded = g.W != s || g.H != s;
        for (var c = 0; c < 3; c++)
        {
            var dst = chw.Slice(c * plane, plane);
            if (padded)
                dst.Fill((PadValue(c) / 255f - cfg.Mean[c]) / cfg.Std[c]);
            for (var y = 0; y < g.H; y++)
                Normalize(planes.AsSpan((c * g.H + y) * g.W, g.W), dst.Slice((g.Dy + y) * s + g.Dx, g.W), cfg.Mean[c], cfg.Std[c]);
        }
        ImagingProfile.Lap(ImagingStage.Normalize, clock);
    }

    internal static void Normalize(ReadOnlySpan<byte> src, Span<float> dst, float mean, float std)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var v255 = Vector256.Create(255f);
            var vm = Vector256.Create(mean);
            var vs = Vector256.Create(std);
            for (; i <= src.Length - 8; i += 8)
            {
                var bytes = Vector128.CreateScalarUnsafe(BinaryPrimitives.ReadUInt64LittleEndian(src[i..])).AsByte();
                var v = Vector256.ConvertToSingle(Vector256.WidenLower(Vector256.Create(Vector128.WidenLower(bytes), Vector128<ushort>.Zero)).AsInt32());
                ((v / v255 - vm) / vs).CopyTo(dst[i..]);
            }
        }
        for (; i < src.Length; i++)
            dst[i] = (src[i] / 255f - mean) / std;
    }
}
