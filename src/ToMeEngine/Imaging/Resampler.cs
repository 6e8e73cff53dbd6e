using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Imaging;

/// <summary>Resampling filters with PIL's definitions (both antialiased: the kernel widens when shrinking).</summary>
public enum ResampleFilter
{
    /// <summary>PIL's <c>BILINEAR</c>: a triangle kernel of support 1.</summary>
    Bilinear,

    /// <summary>PIL's <c>BICUBIC</c>: Keys' cubic with a = −0.5, support 2 (what timm's ViTs use).</summary>
    Bicubic,
}

/// <summary>
/// A bit-exact port of Pillow's ImagingResample for 8-bit images (Resample.c): double-precision
/// coefficients from <c>precompute_coeffs</c>, rounded to 22-bit fixed point (<c>normalize_coeffs_8bpc</c>),
/// a horizontal pass then a vertical pass with rounding and clipping to 8 bits in between, and a pass
/// skipped when that dimension keeps its size. Any window of the output can be computed alone; its
/// values equal those of the full resize. Internally it runs on planar pictures (one plane per channel): the
/// horizontal pass reads the source column by column, 16 rows per vector, the vertical pass 16 columns per vector.
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

    private static readonly ConcurrentDictionary<(int, int, ResampleFilter, int, int), Coeffs> CoeffCache = new();

    /// <summary><see cref="Precompute"/>, remembered: a stream of pictures tends to repeat a few sizes.</summary>
    internal static Coeffs Cached(int inSize, int outSize, ResampleFilter f, int first, int count)
    {
        var key = (inSize, outSize, f, first, count);
        if (CoeffCache.TryGetValue(key, out var c)) return c;
        c = Precompute(inSize, outSize, f, first, count);
        if (CoeffCache.Count >= 256) CoeffCache.Clear();
        CoeffCache[key] = c;
        return c;
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
        CheckWindow(outWidth, outHeight, x0, y0, w, h);
        using var planar = PlanarImage.From(src);
        var planes = new byte[checked(3 * w * h)];
        ResizeWindow(planar, outWidth, outHeight, filter, x0, y0, w, h, planes);
        return Interleave(planes, w, h);
    }

    private static void CheckWindow(int outWidth, int outHeight, int x0, int y0, int w, int h)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || x0 + w > outWidth || y0 + h > outHeight)
            throw new ArgumentOutOfRangeException(nameof(w), $"window {x0},{y0} {w}x{h} outside {outWidth}x{outHeight}");
    }

    /// <summary>Planar row-major (R plane, G plane, B plane) to interleaved RGB.</summary>
    internal static RgbImage Interleave(ReadOnlySpan<byte> planes, int w, int h)
    {
        var image = new RgbImage(w, h);
        var px = image.Pixels;
        var n = w * h;
        for (int i = 0, d = 0; i < n; i++, d += 3)
        {
            px[d] = planes[i];
            px[d + 1] = planes[n + i];
            px[d + 2] = planes[2 * n + i];
        }
        return image;
    }

    /// <summary>
    /// The source pixels (columns X0..X1-1, rows Y0..Y1-1) that the window of a resize from
    /// <paramref name="inWidth"/> x <paramref name="inHeight"/> reads.
    /// </summary>
    internal static PixelRegion SourceRegion(int inWidth, int inHeight, int outWidth, int outHeight, ResampleFilter filter,
        int x0, int y0, int w, int h)
    {
        var (cx0, cx1) = outWidth == inWidth ? (x0, x0 + w) : Span(Cached(inWidth, outWidth, filter, x0, w), w);
        var (ry0, ry1) = outHeight == inHeight ? (y0, y0 + h) : Span(Cached(inHeight, outHeight, filter, y0, h), h);
        return new PixelRegion(cx0, ry0, cx1, ry1);
    }

    private static (int First, int End) Span(Coeffs c, int count)
    {
        int first = int.MaxValue, end = 0;
        for (var j = 0; j < count; j++)
        {
            first = Math.Min(first, c.Bounds[j * 2]);
            end = Math.Max(end, c.Bounds[j * 2] + c.Bounds[j * 2 + 1]);
        }
        return first < end ? (first, end) : (0, 0);
    }

    /// <summary>
    /// The window of the resize of a planar picture into <paramref name="dst"/>: three row-major planes of
    /// w x h bytes (R, G, B). Reads only <see cref="SourceRegion"/> of the source.
    /// </summary>
    internal static unsafe void ResizeWindow(PlanarImage src, int outWidth, int outHeight, ResampleFilter filter,
        int x0, int y0, int w, int h, Span<byte> dst, SimdLevel simd = SimdLevel.Avx512)
    {
        CheckWindow(outWidth, outHeight, x0, y0, w, h);
        if (dst.Length < 3 * w * h)
            throw new ArgumentException($"destination holds {dst.Length} bytes, need {3 * w * h}", nameof(dst));
        bool needH = outWidth != src.Width, needV = outHeight != src.Height;
        var region = SourceRegion(src.Width, src.Height, outWidth, outHeight, filter, x0, y0, w, h);
        var ch = needH ? Cached(src.Width, outWidth, filter, x0, w) : default;
        var cv = needV ? Cached(src.Height, outHeight, filter, y0, h) : default;
        int rowFirst = region.Y0, rows = region.Y1 - region.Y0;
        simd = (SimdLevel)Math.Min((int)simd, (int)Simd.Best);
        var temp = needV ? ArrayPool<byte>.Shared.Rent(checked(rows * w)) : null;
        try
        {
            fixed (byte* d = dst, t = temp)
            {
                var plane = w * h;
                for (var c = 0; c < 3; c++)
                {
                    var o = d + (long)c * plane;
                    if (c > 0 && src.IsGray)
                    {
                        Buffer.MemoryCopy(d, o, plane, plane);
                        continue;
                    }
                    // Without a vertical pass the horizontal one writes the output rows directly.
                    var rowsOut = needV ? t : o;
                    long start = ImagingProfile.Now();
                    fixed (byte* s = src.Plane(c))
                    {
                        if (needH)
                            Horizontal(s, src.ColumnStride, ch, w, rowFirst, rows, rowsOut, simd);
                        else
                            Transpose(s + (long)x0 * src.ColumnStride + rowFirst, src.ColumnStride, w, rows, rowsOut);
                    }
                    start = ImagingProfile.Lap(ImagingStage.ResizeHorizontal, start);
                    if (needV)
                        Vertical(t, w, rowFirst, cv, h, o, simd);
                    ImagingProfile.Lap(ImagingStage.ResizeVertical, start);
                }
            }
        }
        finally
        {
            if (temp is not null) ArrayPool<byte>.Shared.Return(temp);
        }
    }

    /// <summary>Columns x0.. of a planar source to rows: o[r * w + x] = s[x * stride + r].</summary>
    private static unsafe void Transpose(byte* s, int stride, int w, int rows, byte* o)
    {
        for (var x = 0; x < w; x++)
        {
            var col = s + (long)x * stride;
            for (var r = 0; r < rows; r++)
                o[(long)r * w + x] = col[r];
        }
    }

    /// <summary>
    /// The horizontal pass: output column xo of source rows rowFirst.. is a weighted sum of source columns,
    /// which the planar layout stores contiguously, so 16 rows go in one step. Tiles of 16 columns x 16
    /// rows are transposed in registers and written to row-major rows (o[r * w + xo]).
    /// </summary>
    private static unsafe void Horizontal(byte* plane, int stride, Coeffs c, int w, int rowFirst, int rows, byte* o, SimdLevel simd)
    {
        var tile = stackalloc Vector128<byte>[16];
        fixed (int* bounds = c.Bounds, weights = c.Weights)
        {
            var x0 = 0;
            if (simd != SimdLevel.Scalar && rows >= 16 && w >= 16)
            {
                foreach (var xg in new Steps(w, 16))
                    foreach (var r in new Steps(rows, 16))
                    {
                        for (var i = 0; i < 16; i++)
                        {
                            var xo = xg + i;
                            tile[i] = Sum16(plane + (long)bounds[xo * 2] * stride + rowFirst + r, stride, weights + xo * c.KSize, bounds[xo * 2 + 1], simd);
                        }
                        PlanarImage.Transpose16(tile);
                        for (var i = 0; i < 16; i++)
                            Vector128.Store(tile[i], o + (long)(r + i) * w + xg);
                    }
                x0 = w;
            }
            for (var xo = x0; xo < w; xo++)
            {
                int xmin = bounds[xo * 2], taps = bounds[xo * 2 + 1];
                var k = weights + xo * c.KSize;
                var col = plane + (long)xmin * stride + rowFirst;
                for (var r = 0; r < rows; r++)
                {
                    var acc = 1 << (PrecisionBits - 1);
                    var p = col + r;
                    for (var x = 0; x < taps; x++, p += stride)
                        acc += *p * k[x];
                    o[(long)r * w + xo] = Clip8(acc);
                }
            }
        }
    }

    /// <summary>The vertical pass over row-major rows: 16 output columns per step.</summary>
    private static unsafe void Vertical(byte* temp, int w, int rowFirst, Coeffs c, int h, byte* o, SimdLevel simd)
    {
        fixed (int* bounds = c.Bounds, weights = c.Weights)
        {
            for (var yo = 0; yo < h; yo++)
            {
                int ymin = bounds[yo * 2] - rowFirst, taps = bounds[yo * 2 + 1];
                var k = weights + yo * c.KSize;
                var first = temp + (long)ymin * w;
                var dst = o + (long)yo * w;
                if (simd != SimdLevel.Scalar && w >= 16)
                {
                    foreach (var x in new Steps(w, 16))
                        Vector128.Store(Sum16(first + x, w, k, taps, simd), dst + x);
                    continue;
                }
                for (var x = 0; x < w; x++)
                {
                    var acc = 1 << (PrecisionBits - 1);
                    var p = first + x;
                    for (var y = 0; y < taps; y++, p += w)
                        acc += *p * k[y];
                    dst[x] = Clip8(acc);
                }
            }
        }
    }

    /// <summary>
    /// Sixteen sums of taps rows of 16 samples (each <paramref name="stride"/> bytes after the last)
    /// weighted by k: Pillow's 32-bit integer sums, then clip8 = clamp(sum >> 22, 0, 255).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector128<byte> Sum16(byte* p, int stride, int* k, int taps, SimdLevel simd)
    {
        if (simd == SimdLevel.Avx512)
        {
            var acc = Vector512.Create(1 << (PrecisionBits - 1));
            for (var t = 0; t < taps; t++, p += stride)
                acc += Avx512F.ConvertToVector512Int32(Vector128.Load(p)) * Vector512.Create(k[t]);
            return Avx512F.ConvertToVector128ByteWithSaturation(Vector512.Max(acc >> PrecisionBits, Vector512<int>.Zero).AsUInt32());
        }
        var round = Vector256.Create(1 << (PrecisionBits - 1));
        Vector256<int> lo = round, hi = round;
        for (var t = 0; t < taps; t++, p += stride)
        {
            var kt = Vector256.Create(k[t]);
            lo += Avx2.ConvertToVector256Int32(p) * kt;
            hi += Avx2.ConvertToVector256Int32(p + 8) * kt;
        }
        lo = Vector256.Min(Vector256.Max(lo >> PrecisionBits, Vector256<int>.Zero), Vector256.Create(255));
        hi = Vector256.Min(Vector256.Max(hi >> PrecisionBits, Vector256<int>.Zero), Vector256.Create(255));
        var s = Vector256.Narrow(lo, hi);
        return Vector256.Narrow(s, s).GetLower().AsByte();
    }
}

/// <summary>A rectangle of pixels: columns X0..X1-1, rows Y0..Y1-1.</summary>
internal readonly record struct PixelRegion(int X0, int Y0, int X1, int Y1)
{
    public int Width => X1 - X0;
    public int Height => Y1 - Y0;
}
