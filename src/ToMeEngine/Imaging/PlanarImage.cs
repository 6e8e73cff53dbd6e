using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Imaging;

/// <summary>
/// An 8-bit RGB picture as three planes stored column by column: sample (x, y) of a channel is at
/// <c>x * ColumnStride + y</c>. The JPEG decoder writes this layout without cost (its IDCT ends with
/// columns in registers), and it makes the horizontal resize pass a run over contiguous memory. The
/// planes are rented from the shared pool and returned by <see cref="Dispose"/>. A decoder that was told
/// which part of the picture is needed fills only that region; the rest of the planes is undefined.
/// </summary>
internal sealed class PlanarImage : IDisposable
{
    /// <summary>Bytes readable past the last column, so that 16-sample vector loads never need a tail case.</summary>
    public const int Slack = 64;

    private byte[]?[] planes;

    public PlanarImage(int width, int height, int columnStride, bool gray = false)
    {
        if (width <= 0 || height <= 0 || columnStride < height)
            throw new ArgumentOutOfRangeException(nameof(width), $"planar picture {width}x{height}, column stride {columnStride}");
        Width = width;
        Height = height;
        ColumnStride = columnStride;
        var first = RentPlane(width, columnStride);
        planes = gray ? [first, first, first] : [first, RentPlane(width, columnStride), RentPlane(width, columnStride)];
    }

    /// <summary>Adopts three pooled planes (the same array thrice for grayscale); they are returned on disposal.</summary>
    public PlanarImage(int width, int height, int columnStride, byte[] r, byte[] g, byte[] b)
    {
        if (width <= 0 || height <= 0 || columnStride < height || (long)width * columnStride + Slack > Math.Min(r.Length, Math.Min(g.Length, b.Length)))
            throw new ArgumentOutOfRangeException(nameof(width), $"planar picture {width}x{height}, column stride {columnStride}");
        Width = width;
        Height = height;
        ColumnStride = columnStride;
        planes = [r, g, b];
    }

    /// <summary>A pooled buffer for one plane of <paramref name="width"/> columns.</summary>
    public static byte[] RentPlane(int width, int columnStride) => ArrayPool<byte>.Shared.Rent(checked(width * columnStride + Slack));

    public int Width { get; }
    public int Height { get; }
    public int ColumnStride { get; }

    /// <summary>True when the three channels are one plane (a grayscale source).</summary>
    public bool IsGray => ReferenceEquals(planes[0], planes[1]);

    public byte[] Plane(int channel) => planes[channel] ?? throw new ObjectDisposedException(nameof(PlanarImage));

    /// <summary>Row-major interleaved RGB of the whole picture.</summary>
    public unsafe RgbImage ToRgb()
    {
        var clock = ImagingProfile.Now();
        int w = Width, h = Height, stride = ColumnStride;
        var image = new RgbImage(w, h, GC.AllocateUninitializedArray<byte>(checked(w * h * 3)));
        fixed (byte* r = Plane(0), g = Plane(1), b = Plane(2), o = image.Pixels)
        {
            var simd = Ssse3.IsSupported && w >= 16 && h >= 16;
            var tile = stackalloc Vector128<byte>[48];
            // 16 x 16 tiles, a band of 16 rows at a time so that the output is written in order: transpose
            // each plane's columns into rows, then interleave.
            foreach (var y0 in new Steps(simd ? h : 0, 16))
                foreach (var x0 in new Steps(w, 16))
                {
                    for (var c = 0; c < 3; c++)
                    {
                        var plane = (c == 0 ? r : c == 1 ? g : b) + (long)x0 * stride + y0;
                        for (var i = 0; i < 16; i++)
                            tile[16 * c + i] = Vector128.Load(plane + (long)i * stride);
                        Transpose16(tile + 16 * c);
                    }
                    for (var j = 0; j < 16; j++)
                        Interleave(tile[j], tile[16 + j], tile[32 + j], o + ((long)(y0 + j) * w + x0) * 3);
                }
            for (var x = 0; x < w && !simd; x++)
            {
                byte* pr = r + (long)x * stride, pg = g + (long)x * stride, pb = b + (long)x * stride;
                var d = o + 3 * x;
                for (var y = 0; y < h; y++, d += 3 * w)
                {
                    d[0] = pr[y];
                    d[1] = pg[y];
                    d[2] = pb[y];
                }
            }
        }
        ImagingProfile.Lap(ImagingStage.Interleave, clock);
        return image;
    }

    /// <summary>The planar form of an interleaved picture.</summary>
    public static unsafe PlanarImage From(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int w = image.Width, h = image.Height;
        var p = new PlanarImage(w, h, h);
        fixed (byte* r = p.Plane(0), g = p.Plane(1), b = p.Plane(2), s = image.Pixels)
        {
            var simd = Ssse3.IsSupported && w >= 16 && h >= 16;
            var tile = stackalloc Vector128<byte>[48];
            foreach (var x0 in new Steps(simd ? w : 0, 16))
                foreach (var y0 in new Steps(h, 16))
                {
                    for (var j = 0; j < 16; j++)
                        Deinterleave(s + ((long)(y0 + j) * w + x0) * 3, out tile[j], out tile[16 + j], out tile[32 + j]);
                    for (var c = 0; c < 3; c++)
                    {
                        Transpose16(tile + 16 * c);
                        var plane = (c == 0 ? r : c == 1 ? g : b) + (long)x0 * h + y0;
                        for (var i = 0; i < 16; i++)
                            Vector128.Store(tile[16 * c + i], plane + (long)i * h);
                    }
                }
            for (var y = 0; y < h && !simd; y++)
            {
                var src = s + (long)y * w * 3;
                for (var x = 0; x < w; x++, src += 3)
                {
                    long i = (long)x * h + y;
                    r[i] = src[0];
                    g[i] = src[1];
                    b[i] = src[2];
                }
            }
        }
        return p;
    }

    /// <summary>
    /// Transposes 16 vectors of 16 bytes in registers. Each round interleaves vector i with vector i + 8,
    /// which rotates the 8-bit (vector, byte) index left by one; four rounds swap its halves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Transpose16(Vector128<byte>* p)
    {
        Vector128<byte> x0 = p[0], x1 = p[1], x2 = p[2], x3 = p[3], x4 = p[4], x5 = p[5], x6 = p[6], x7 = p[7],
            x8 = p[8], x9 = p[9], x10 = p[10], x11 = p[11], x12 = p[12], x13 = p[13], x14 = p[14], x15 = p[15];
        for (var round = 0; round < 4; round++)
        {
            var y0 = Sse2.UnpackLow(x0, x8);
            var y1 = Sse2.UnpackHigh(x0, x8);
            var y2 = Sse2.UnpackLow(x1, x9);
            var y3 = Sse2.UnpackHigh(x1, x9);
            var y4 = Sse2.UnpackLow(x2, x10);
            var y5 = Sse2.UnpackHigh(x2, x10);
            var y6 = Sse2.UnpackLow(x3, x11);
            var y7 = Sse2.UnpackHigh(x3, x11);
            var y8 = Sse2.UnpackLow(x4, x12);
            var y9 = Sse2.UnpackHigh(x4, x12);
            var y10 = Sse2.UnpackLow(x5, x13);
            var y11 = Sse2.UnpackHigh(x5, x13);
            var y12 = Sse2.UnpackLow(x6, x14);
            var y13 = Sse2.UnpackHigh(x6, x14);
            var y14 = Sse2.UnpackLow(x7, x15);
            var y15 = Sse2.UnpackHigh(x7, x15);
            (x0, x1, x2, x3, x4, x5, x6, x7) = (y0, y1, y2, y3, y4, y5, y6, y7);
            (x8, x9, x10, x11, x12, x13, x14, x15) = (y8, y9, y10, y11, y12, y13, y14, y15);
        }
        (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]) = (x0, x1, x2, x3, x4, x5, x6, x7);
        (p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]) = (x8, x9, x10, x11, x12, x13, x14, x15);
    }

    // Byte shuffles between 16 pixels of three planes and their 48 interleaved bytes (0x80 selects zero):
    // PackQC takes plane C's bytes into output chunk Q; UnpackQC takes chunk Q's bytes into plane C.
    // Static readonly vectors are constants to the optimizing JIT.
    private static readonly Vector128<byte> Pack0R = Mask(false, 0, 0), Pack0G = Mask(false, 0, 1), Pack0B = Mask(false, 0, 2),
        Pack1R = Mask(false, 1, 0), Pack1G = Mask(false, 1, 1), Pack1B = Mask(false, 1, 2),
        Pack2R = Mask(false, 2, 0), Pack2G = Mask(false, 2, 1), Pack2B = Mask(false, 2, 2),
        Unpack0R = Mask(true, 0, 0), Unpack0G = Mask(true, 0, 1), Unpack0B = Mask(true, 0, 2),
        Unpack1R = Mask(true, 1, 0), Unpack1G = Mask(true, 1, 1), Unpack1B = Mask(true, 1, 2),
        Unpack2R = Mask(true, 2, 0), Unpack2G = Mask(true, 2, 1), Unpack2B = Mask(true, 2, 2);

    private static Vector128<byte> Mask(bool unpack, int q, int c)
    {
        var m = new byte[16];
        for (var i = 0; i < 16; i++)
        {
            int k = 16 * q + i, source = unpack
                ? 3 * i + c - 16 * q                // pixel i of plane c is interleaved byte 3i + c, when in chunk q
                : k % 3 == c ? k / 3 : -1;          // interleaved byte k is pixel k / 3 of plane k % 3
            m[i] = source is >= 0 and < 16 ? (byte)source : (byte)0x80;
        }
        return Vector128.Create(m);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Interleave(Vector128<byte> r, Vector128<byte> g, Vector128<byte> b, byte* o)
    {
        Vector128.Store(Ssse3.Shuffle(r, Pack0R) | Ssse3.Shuffle(g, Pack0G) | Ssse3.Shuffle(b, Pack0B), o);
        Vector128.Store(Ssse3.Shuffle(r, Pack1R) | Ssse3.Shuffle(g, Pack1G) | Ssse3.Shuffle(b, Pack1B), o + 16);
        Vector128.Store(Ssse3.Shuffle(r, Pack2R) | Ssse3.Shuffle(g, Pack2G) | Ssse3.Shuffle(b, Pack2B), o + 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Deinterleave(byte* s, out Vector128<byte> r, out Vector128<byte> g, out Vector128<byte> b)
    {
        Vector128<byte> s0 = Vector128.Load(s), s1 = Vector128.Load(s + 16), s2 = Vector128.Load(s + 32);
        r = Ssse3.Shuffle(s0, Unpack0R) | Ssse3.Shuffle(s1, Unpack1R) | Ssse3.Shuffle(s2, Unpack2R);
        g = Ssse3.Shuffle(s0, Unpack0G) | Ssse3.Shuffle(s1, Unpack1G) | Ssse3.Shuffle(s2, Unpack2G);
        b = Ssse3.Shuffle(s0, Unpack0B) | Ssse3.Shuffle(s1, Unpack1B) | Ssse3.Shuffle(s2, Unpack2B);
    }

    public void Dispose()
    {
        var p = planes;
        planes = [null, null, null];
        if (p[0] is { } first) ArrayPool<byte>.Shared.Return(first);
        if (p[1] is { } second && !ReferenceEquals(second, p[0])) ArrayPool<byte>.Shared.Return(second);
        if (p[2] is { } third && !ReferenceEquals(third, p[0])) ArrayPool<byte>.Shared.Return(third);
    }
}
