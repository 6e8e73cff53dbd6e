using ToMe.Imaging;
using ToMe.Imaging.Jpeg;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

/// <summary>
/// The decode-straight-to-tensor path (<see cref="Preprocessor.Run(byte[], Span{float}, DecodeOptions?)"/>),
/// which decodes only the region the crop reads, against decoding the whole picture first; and the vector
/// kernels of the planar resampler and the colour conversion against their scalar twins.
/// </summary>
public class PlanarPathTests
{
    public static TheoryData<string> Files()
    {
        var dir = RepoData.Path("images");
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(dir).Concat(Directory.GetFiles(Path.Combine(dir, "libjpeg")))
                     .Where(f => f.EndsWith(".jpg") || f.EndsWith(".png") || f.EndsWith(".bmp") || f.EndsWith(".pnm"))
                     .Where(f => !f.EndsWith("arith.jpg")).Order(StringComparer.Ordinal))
            data.Add(Path.GetRelativePath(dir, f));
        return data;
    }

    // Crops that take the middle, nearly all, a sliver, and more than the picture (padding), with both filters.
    private static readonly PreprocessConfig[] Configs =
    [
        PreprocessConfig.ImageNet(),
        PreprocessConfig.Inception(),
        new() { ImgSize = 24, CropPct = 0.5, Interpolation = ResampleFilter.Bilinear },
        new() { ImgSize = 40, CropPct = 1.0 },
        new() { ImgSize = 7, CropPct = 0.3 },
        new() { ImgSize = 120, CropPct = 2.0, Interpolation = ResampleFilter.Bilinear },
    ];

    [Theory]
    [MemberData(nameof(Files))]
    public void FileToTensorEqualsDecodeThenPreprocess(string name)
    {
        var bytes = File.ReadAllBytes(RepoData.Path(Path.Combine("images", name)));
        var image = ImageDecoder.Decode(bytes);
        foreach (var config in Configs)
        {
            var pre = new Preprocessor(config);
            var expected = pre.Run(image);
            var actual = new float[pre.OutputLength];
            actual.AsSpan().Fill(float.NaN);
            pre.Run(bytes, actual);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{name}, {config.ImgSize}/{config.CropPct}/{config.Interpolation}");
        }
    }

    [Fact]
    public void FileToTensorRejectsDamagedFilesWithTheDocumentedException()
    {
        var pre = new Preprocessor(PreprocessConfig.ImageNet());
        var tensor = new float[pre.OutputLength];
        foreach (var name in new[] { "images/tiny_420_q90.jpg", "images/baseline_444_q95.jpg", "images/libjpeg/prog_restart.jpg", "images/png_rgb.png" })
        {
            var original = File.ReadAllBytes(RepoData.Path(name));
            for (var n = 0; n < original.Length; n += Math.Max(1, original.Length / 40))
                Assert.Throws<InvalidImageException>(() => pre.Run(original.AsSpan(0, n).ToArray(), tensor));
            var rng = new Random(7);
            for (var iteration = 0; iteration < 60; iteration++)
            {
                var data = (byte[])original.Clone();
                for (var f = 0; f < 3; f++)
                    data[rng.Next(Math.Min(data.Length, iteration % 2 == 0 ? 700 : data.Length))] ^= (byte)(1 << rng.Next(8));
                try
                {
                    pre.Run(data, tensor, new DecodeOptions { MaxPixels = 2_000_000 });
                }
                catch (InvalidImageException)
                {
                }
                catch (ArgumentException e) when (e.Message.Contains("too thin"))
                {
                    // A flipped size bit can leave a picture too thin to resize; the preprocessor says so.
                }
            }
        }
    }

    [Theory]
    [InlineData(37, 23)]
    [InlineData(16, 16)]
    [InlineData(17, 33)]
    [InlineData(5, 40)]
    [InlineData(100, 15)]
    [InlineData(1, 1)]
    public void PlanarRoundTrip(int w, int h)
    {
        var rgb = Noise(w, h, w * h);
        using var planar = PlanarImage.From(rgb);
        // Column-major planes: sample (x, y) at x * stride + y.
        Assert.Equal(rgb.Pixels[((h - 1) * w + w - 1) * 3 + 1], planar.Plane(1)[(w - 1) * planar.ColumnStride + h - 1]);
        Assert.Equal(rgb.Pixels, planar.ToRgb().Pixels);
    }

    [Theory]
    [InlineData(ResampleFilter.Bicubic)]
    [InlineData(ResampleFilter.Bilinear)]
    public void VectorResizeEqualsScalar(ResampleFilter filter)
    {
        if (Simd.Best == SimdLevel.Scalar)
            Assert.Skip("no vector instructions on this CPU");
        var rng = new Random(11);
        int[] sizes = [1, 2, 15, 16, 17, 31, 33, 64, 100];
        for (var iteration = 0; iteration < 300; iteration++)
        {
            int w = sizes[rng.Next(sizes.Length)], h = sizes[rng.Next(sizes.Length)];
            int ow = sizes[rng.Next(sizes.Length)], oh = sizes[rng.Next(sizes.Length)];
            int x0 = rng.Next(ow), y0 = rng.Next(oh), ww = 1 + rng.Next(ow - x0), wh = 1 + rng.Next(oh - y0);
            using var planar = PlanarImage.From(Noise(w, h, iteration));
            var scalar = new byte[3 * ww * wh];
            Resampler.ResizeWindow(planar, ow, oh, filter, x0, y0, ww, wh, scalar, SimdLevel.Scalar);
            foreach (var level in Simd.Supported.Skip(1))
            {
                var vector = new byte[3 * ww * wh];
                Resampler.ResizeWindow(planar, ow, oh, filter, x0, y0, ww, wh, vector, level);
                Assert.True(vector.AsSpan().SequenceEqual(scalar), $"{level}: {w}x{h} -> {ow}x{oh}, window {x0},{y0} {ww}x{wh}");
            }
        }
    }

    [Fact]
    public unsafe void VectorColourConversionEqualsScalarForEverySample()
    {
        if (Simd.Best == SimdLevel.Scalar)
            Assert.Skip("no vector instructions on this CPU");
        // Every (Y, Cb, Cr): 256 columns of 65536 rows.
        const int n = 65536;
        var cb = new byte[n];
        var cr = new byte[n];
        for (var i = 0; i < n; i++)
            (cb[i], cr[i]) = ((byte)i, (byte)(i >> 8));
        var y = new byte[n];
        var a = new byte[3 * n];
        var b = new byte[3 * n];
        for (var luma = 0; luma < 256; luma++)
        {
            Array.Fill(y, (byte)luma);
            foreach (var level in Simd.Supported.Skip(1))
            {
                fixed (byte* py = y, pcb = cb, pcr = cr, pa = a, pb = b)
                {
                    // A length of 16k + 13: the 16-wide loop, one 8-wide step and the scalar tail.
                    JpegDecoder.YccColumn(py, pcb, pcr, pa, pa + n, pa + 2 * n, 0, n - 3, level);
                    JpegDecoder.YccColumn(py, pcb, pcr, pb, pb + n, pb + 2 * n, 0, n - 3, SimdLevel.Scalar);
                }
                Assert.True(a.AsSpan().SequenceEqual(b), $"{level}, Y = {luma}");
            }
        }
    }

    private static RgbImage Noise(int w, int h, int seed)
    {
        var pixels = new byte[w * h * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(w, h, pixels);
    }
}
