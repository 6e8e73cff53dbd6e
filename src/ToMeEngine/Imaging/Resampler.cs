using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    /// <summary>Coefficients of outputs <paramref name="first"/> .. first+count-1 (indexed from 0) of an inSize -> outSize pass.</summary>
    internal static Coeffs Precompute(int inSize, int outSize, ResampleFilter f, int first, int count)
    {
        var filterSupport = f == ResampleFilter.Bilinear ? 1.0 : 2.0;
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        var support = filterSupport * filterScale;
        var ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[count * 2];
        var weights = new int[checked(count * ksize)];
        var k = new double[ksize];
        for (var xx = first; xx < first + count; xx++)
        {
            var j = xx - first;
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
                weights[j * ksize + x] = k[x] < 0 ? (int)(-0.5 + v) : (int)(0.5 + v);
            }
            bounds[j * 2] = xmin;
            bounds[j * 2 + 1] = xmax;
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
            cv = Precompute(src.Height, outHeight, filter, y0, h);
            rowFirst = int.MaxValue;
            rowEnd = 0;
            for (var j = 0; j < h; j++)
            {
                rowFirst = Math.Min(rowFirst, cv.Bounds[j * 2]);
                rowEnd = Math.Max(rowEnd, cv.Bounds[j * 2] + cv.Bounds[j * 2 + 1]);
            }
        }
        var rows = rowEnd - rowFirst;
        var tempStride = w * 3;
        var temp = new byte[checked(rows * tempStride)];
        if (needH)
            Horizontal(src, Precompute(src.Width, outWidth, filter, x0, w), w, rowFirst, rows, temp);
        else
            for (var r = 0; r < rows; r++)
                src.Pixels.AsSpan((rowFirst + r) * src.Stride + x0 * 3, tempStride).CopyTo(temp.AsSpan(r * tempStride));
        if (!needV)
            return new RgbImage(w, h, temp);

        var output = new byte[h * tempStride];
        Vertical(temp, tempStride, rowFirst, cv, h, output);
        return new RgbImage(w, h, output);
    }

    private static unsafe void Horizontal(RgbImage src, Coeffs c, int w, int rowFirst, int rows, byte[] temp)
    {
        var stride = src.Stride;
        var tempStride = w * 3;
        // Bounds were clamped to the source width by Precompute, so every tap is inside the row.
        fixed (byte* px = src.Pixels, tp = temp)
        fixed (int* bounds = c.Bounds, weights = c.Weights)
        {
            var end = px + src.Pixels.Length;
            for (var r = 0; r < rows; r++)
            {
                var line = px + (long)(rowFirst + r) * stride;
                var o = tp + (long)r * tempStride;
                for (var xx = 0; xx < w; xx++)
                {
                    int xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
                    var k = weights + xx * c.KSize;
                    var sp = line + xmin * 3;
                    // One 4-lane vector per tap (R, G, B and a discarded byte), unless that extra byte
                    // would be read past the end of the picture.
                    if (Sse41.IsSupported && sp + xmax * 3 < end)
                    {
                        var acc = Vector128.Create(1 << (PrecisionBits - 1));
                        for (var x = 0; x < xmax; x++, sp += 3)
                            acc += Sse41.ConvertToVector128Int32(sp) * k[x];
                        var v = Vector128.Min(Vector128.Max(acc >> PrecisionBits, Vector128<int>.Zero), Vector128.Create(255));
                        o[3 * xx] = (byte)v.GetElement(0);
                        o[3 * xx + 1] = (byte)v.GetElement(1);
                        o[3 * xx + 2] = (byte)v.GetElement(2);
                        continue;
                    }
                    int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                    for (var x = 0; x < xmax; x++, sp += 3)
                    {
                        var kx = k[x];
                        s0 += sp[0] * kx;
                        s1 += sp[1] * kx;
                        s2 += sp[2] * kx;
                    }
                    o[3 * xx] = Clip8(s0);
                    o[3 * xx + 1] = Clip8(s1);
                    o[3 * xx + 2] = Clip8(s2);
                }
            }
        }
    }

    /// <summary>
    /// The vertical pass for 8 samples at a time: the same 32-bit sums, the taps accumulated in a
    /// register; Clip8 is clamp(sum >> 22, 0, 255). Returns how many samples of the row it wrote.
    /// </summary>
    private static unsafe int VerticalAvx2(byte* first, int stride, int* k, int taps, byte* o)
    {
        var i = 0;
        var round = Vector256.Create(1 << (PrecisionBits - 1));
        for (; i + 8 <= stride; i += 8)
        {
            var acc = round;
            var p = first + i;
            for (var y = 0; y < taps; y++, p += stride)
                acc += Avx2.ConvertToVector256Int32(p) * k[y];
            var v = Vector256.Min(Vector256.Max(acc >> PrecisionBits, Vector256<int>.Zero), Vector256.Create(255));
            var packed = Vector256.Narrow(Vector256.Narrow(v, v), Vector256<short>.Zero);
            *(ulong*)(o + i) = packed.AsUInt64().GetElement(0);
        }
        return i;
    }

    private static unsafe void Vertical(byte[] temp, int stride, int rowFirst, Coeffs c, int h, byte[] output)
    {
        var acc = new int[stride];
        fixed (byte* tp = temp, op = output)
        fixed (int* a = acc, bounds = c.Bounds, weights = c.Weights)
        {
            for (var yy = 0; yy < h; yy++)
            {
                int ymin = bounds[yy * 2] - rowFirst, ymax = bounds[yy * 2 + 1];
                var k = weights + yy * c.KSize;
                var o = op + (long)yy * stride;
                var first = tp + (long)ymin * stride;
                var done = Avx2.IsSupported ? VerticalAvx2(first, stride, k, ymax, o) : 0;
                if (done == stride) continue;
                new Span<int>(a, stride).Fill(1 << (PrecisionBits - 1));
                // Row-major accumulation: the same integer sums as Pillow's per-pixel loop, cache friendly.
                for (var y = 0; y < ymax; y++)
                {
                    var ky = k[y];
                    var line = tp + (long)(ymin + y) * stride;
                    for (var i = done; i < stride; i++)
                        a[i] += line[i] * ky;
                }
                for (var i = done; i < stride; i++)
                    o[i] = Clip8(a[i]);
            }
        }
    }
}
