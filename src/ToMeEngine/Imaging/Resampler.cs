namespace ToMe.Imaging;

/// <summary>Resampling filters with PIL's definitions (both antialiased: the kernel widens when shrinking).</summary>
public enum ResampleFilter
{
    Bilinear,
    Bicubic,
}

/// <summary>
/// A bit-exact port of Pillow's ImagingResample for 8-bit images (Resample.c): double-precision
/// coefficients from <c>precompute_coeffs</c>, rounded to 22-bit fixed point (<c>normalize_coeffs_8bpc</c>),
/// a horizontal pass then a vertical pass with rounding and clipping to 8 bits in between, and a pass
/// skipped when that dimension keeps its size. Any window of the output can be computed alone; its
/// values equal those of the full resize.
/// </summary>
public static class Resampler
{
    private const int PrecisionBits = 32 - 8 - 2;

    internal readonly record struct Coeffs(int KSize, int[] Bounds, int[] Weights);

    private static double Filter(ResampleFilter f, double x)
    {
        if (x < 0.0) x = -x;
        if (f == ResampleFilter.Bilinear)
            return x < 1.0 ? 1.0 - x : 0.0;
        const double a = -0.5;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    internal static Coeffs Precompute(int inSize, int outSize, ResampleFilter f)
    {
        var filterSupport = f == ResampleFilter.Bilinear ? 1.0 : 2.0;
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        var support = filterSupport * filterScale;
        var ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[checked(outSize * ksize)];
        var k = new double[ksize];
        for (var xx = 0; xx < outSize; xx++)
        {
            var center = (xx + 0.5) * scale;
            var ww = 0.0;
            var ss = 1.0 / filterScale;
            var xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            var xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (var x = 0; x < xmax; x++)
            {
                var w = Filter(f, (x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (var x = 0; x < xmax; x++)
            {
                if (ww != 0.0) k[x] /= ww;
                // normalize_coeffs_8bpc: round half away from zero.
                var v = k[x] * (1 << PrecisionBits);
                weights[xx * ksize + x] = k[x] < 0 ? (int)(-0.5 + v) : (int)(0.5 + v);
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return new Coeffs(ksize, bounds, weights);
    }

    private static byte Clip8(int v)
    {
        if (v >= (1 << PrecisionBits) << 8) return 255;
        if (v <= 0) return 0;
        return (byte)(v >> PrecisionBits);
    }

    /// <summary>PIL's <c>Image.resize((outWidth, outHeight), filter)</c> of an RGB picture.</summary>
    public static RgbImage Resize(RgbImage src, int outWidth, int outHeight, ResampleFilter filter) =>
        ResizeWindow(src, outWidth, outHeight, filter, 0, 0, outWidth, outHeight);

    /// <summary>
    /// The <paramref name="w"/> x <paramref name="h"/> window at (<paramref name="x0"/>, <paramref name="y0"/>)
    /// of the full resize to <paramref name="outWidth"/> x <paramref name="outHeight"/>, computing only the
    /// source rows and output columns that window needs.
    /// </summary>
    public static RgbImage ResizeWindow(RgbImage src, int outWidth, int outHeight, ResampleFilter filter, int x0, int y0, int w, int h)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || x0 + w > outWidth || y0 + h > outHeight)
            throw new ArgumentOutOfRangeException(nameof(w), $"window {x0},{y0} {w}x{h} outside {outWidth}x{outHeight}");
        bool needH = outWidth != src.Width, needV = outHeight != src.Height;

        // Source rows the window's vertical pass reads.
        int rowFirst = y0, rowEnd = y0 + h;
        Coeffs cv = default;
        if (needV)
        {
            cv = Precompute(src.Height, outHeight, filter);
            rowFirst = int.MaxValue;
            rowEnd = 0;
            for (var yy = y0; yy < y0 + h; yy++)
            {
                rowFirst = Math.Min(rowFirst, cv.Bounds[yy * 2]);
                rowEnd = Math.Max(rowEnd, cv.Bounds[yy * 2] + cv.Bounds[yy * 2 + 1]);
            }
        }
        var rows = rowEnd - rowFirst;
        var tempStride = w * 3;
        var temp = new byte[checked(rows * tempStride)];
        if (needH)
            Horizontal(src, Precompute(src.Width, outWidth, filter), x0, w, rowFirst, rows, temp);
        else
            for (var r = 0; r < rows; r++)
                src.Pixels.AsSpan((rowFirst + r) * src.Stride + x0 * 3, tempStride).CopyTo(temp.AsSpan(r * tempStride));
        if (!needV)
            return new RgbImage(w, h, temp);

        var output = new byte[h * tempStride];
        Vertical(temp, tempStride, rowFirst, cv, y0, h, output);
        return new RgbImage(w, h, output);
    }

    private static void Horizontal(RgbImage src, Coeffs c, int x0, int w, int rowFirst, int rows, byte[] temp)
    {
        var px = src.Pixels;
        var stride = src.Stride;
        var tempStride = w * 3;
        for (var r = 0; r < rows; r++)
        {
            var line = px.AsSpan((rowFirst + r) * stride, stride);
            var o = temp.AsSpan(r * tempStride, tempStride);
            for (var xx = 0; xx < w; xx++)
            {
                int xmin = c.Bounds[(x0 + xx) * 2], xmax = c.Bounds[(x0 + xx) * 2 + 1];
                var k = c.Weights.AsSpan((x0 + xx) * c.KSize, xmax);
                var s = line.Slice(xmin * 3, xmax * 3);
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                for (var x = 0; x < k.Length; x++)
                {
                    var kx = k[x];
                    s0 += s[3 * x] * kx;
                    s1 += s[3 * x + 1] * kx;
                    s2 += s[3 * x + 2] * kx;
                }
                o[3 * xx] = Clip8(s0);
                o[3 * xx + 1] = Clip8(s1);
                o[3 * xx + 2] = Clip8(s2);
            }
        }
    }

    private static void Vertical(byte[] temp, int stride, int rowFirst, Coeffs c, int y0, int h, byte[] output)
    {
        var acc = new int[stride];
        for (var yy = 0; yy < h; yy++)
        {
            int ymin = c.Bounds[(y0 + yy) * 2] - rowFirst, ymax = c.Bounds[(y0 + yy) * 2 + 1];
            var k = c.Weights.AsSpan((y0 + yy) * c.KSize, ymax);
            acc.AsSpan().Fill(1 << (PrecisionBits - 1));
            // Row-major accumulation: same integer sums as Pillow's per-pixel loop, cache friendly.
            for (var y = 0; y < k.Length; y++)
            {
                var ky = k[y];
                var line = temp.AsSpan((ymin + y) * stride, stride);
                for (var i = 0; i < line.Length; i++)
                    acc[i] += line[i] * ky;
            }
            var o = output.AsSpan(yy * stride, stride);
            for (var i = 0; i < o.Length; i++)
                o[i] = Clip8(acc[i]);
        }
    }
}
