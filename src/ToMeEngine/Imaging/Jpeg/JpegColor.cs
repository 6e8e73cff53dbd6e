using System.Buffers;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Imaging.Jpeg;

/// <summary>
/// Colour conversion (jdcolor.c) as libjpeg-turbo does it, after upsampling (<see cref="ColumnUpsampler"/>),
/// then PIL's CMYK->RGB for four-component files.
/// </summary>
internal sealed partial class JpegDecoder
{
    private const int ScaleBits = 16;
    private const int OneHalf = 1 << (ScaleBits - 1);
    private static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);

    private static readonly int[] CrR = new int[256], CbB = new int[256], CrG = new int[256], CbG = new int[256];

    static JpegDecoder()
    {
        // jdcolor.c build_ycc_rgb_table.
        for (int i = 0, x = -128; i < 256; i++, x++)
        {
            CrR[i] = (Fix(1.40200) * x + OneHalf) >> ScaleBits;
            CbB[i] = (Fix(1.77200) * x + OneHalf) >> ScaleBits;
            CrG[i] = -Fix(0.71414) * x;
            CbG[i] = -Fix(0.34414) * x + OneHalf;
        }
    }

    // range_limit as a table: sums of a sample and a chroma term lie well inside [-384, 640).
    private const int ClampOffset = 384;
    private static readonly byte[] ClampTable = Enumerable.Range(-ClampOffset, 1024).Select(v => (byte)Math.Clamp(v, 0, 255)).ToArray();

    private static byte Clamp(int v) => (byte)(v < 0 ? 0 : v > 255 ? 255 : v);

    /// <summary>
    /// After the last scan: the progressive inverse DCT, then upsampling and colour conversion of the
    /// requested region, column by column, into a <see cref="PlanarImage"/>. Full-resolution components
    /// are converted in place: their planes become the output's.
    /// </summary>
    private PlanarImage Finish()
    {
        var clock = ImagingProfile.Now();
        foreach (var c in comps)
        {
            if (!c.Scanned)
                Array.Clear(c.Plane!); // never in a scan: zero samples
            else if (progressive)
                ProgressiveIdct(c);
        }
        clock = ImagingProfile.Lap(ImagingStage.Idct, clock);
        var stride = mcusY * maxV * 8;
        PlanarImage result;
        if (comps.Length == 1)
        {
            // One component is always at full resolution: the picture is its plane.
            var plane = comps[0].Plane!;
            comps[0].Plane = null;
            result = new PlanarImage(width, height, stride, plane, plane, plane);
        }
        else
        {
            result = ConvertColumns(stride);
        }
        ImagingProfile.Lap(ImagingStage.UpsampleColor, clock);
        return result;
    }

    private unsafe void ProgressiveIdct(JpegComponent c)
    {
        fixed (short* coefs = c.Coefs)
            for (var by = c.By0; by < c.By1; by++)
                for (var bx = c.Bx0; bx < c.Bx1; bx++)
                    InverseDct(c, bx, by, coefs + ((long)by * c.BlocksW + bx) * 64, hasAc: true);
    }

    private enum ColorKind { YCbCr, Rgb, Cmyk, Ycck }

    private unsafe PlanarImage ConvertColumns(int stride)
    {
        // libjpeg's default colour space: JFIF => YCbCr; Adobe transform 0 => RGB; else ids 'R','G','B' => RGB.
        // Four components: Adobe transform 2 means YCCK, which libjpeg turns into (Adobe-inverted) CMYK.
        var kind = comps.Length == 3
            ? !sawJfif && (sawAdobe ? adobeTransform == 0 : comps[0].Id == 'R' && comps[1].Id == 'G' && comps[2].Id == 'B') ? ColorKind.Rgb : ColorKind.YCbCr
            : sawAdobe && adobeTransform == 2 ? ColorKind.Ycck : ColorKind.Cmyk;
        var n = comps.Length;
        var output = new byte[3][];
        var ups = new ColumnUpsampler[n];
        var pins = new List<GCHandle>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var c = comps[i];
                if (c.H == maxH && c.V == maxV && kind != ColorKind.Cmyk && kind != ColorKind.Ycck)
                {
                    output[i] = c.Plane!; // converted in place
                    c.Plane = null;
                }
                else
                {
                    output[i] = PlanarImage.RentPlane(width, stride);
                }
            }
            var outPtr = stackalloc byte*[3];
            for (var i = 0; i < 3; i++)
            {
                pins.Add(GCHandle.Alloc(output[i], GCHandleType.Pinned));
                outPtr[i] = (byte*)pins[^1].AddrOfPinnedObject();
            }
            var colPtr = stackalloc byte*[n];
            for (var i = 0; i < n; i++)
            {
                // An adopted plane is both the component's input and the output channel.
                var plane = comps[i].Plane is { } p ? p : output[i];
                ups[i] = new ColumnUpsampler(comps[i], maxH / comps[i].H, maxV / comps[i].V, stride, plane);
            }
            // Whole groups of 8 rows: the vector kernels need no tail, and the rows past the picture are padding.
            int y0 = region.Y0 & ~7, y1 = Math.Min((region.Y1 + 7) & ~7, stride);
            for (var x = region.X0; x < region.X1; x++)
            {
                for (var i = 0; i < n; i++)
                    colPtr[i] = ups[i].Column(x, y0, y1);
                var o = (long)x * stride;
                byte* r = outPtr[0] + o, g = outPtr[1] + o, b = outPtr[2] + o;
                switch (kind)
                {
                    case ColorKind.YCbCr:
                        YccColumn(colPtr[0], colPtr[1], colPtr[2], r, g, b, y0, y1);
                        break;
                    case ColorKind.Rgb:
                        for (var i = 0; i < 3; i++)
                            if (colPtr[i] != outPtr[i] + o)
                                Buffer.MemoryCopy(colPtr[i] + y0, outPtr[i] + o + y0, y1 - y0, y1 - y0);
                        break;
                    default:
                        CmykColumn(colPtr, kind == ColorKind.Ycck, r, g, b, region.Y0, region.Y1);
                        break;
                }
            }
            var result = new PlanarImage(width, height, stride, output[0], output[1], output[2]);
            output = [];
            return result;
        }
        finally
        {
            foreach (var u in ups) u?.Dispose();
            foreach (var h in pins) h.Free();
            foreach (var plane in output) if (plane is not null) ArrayPool<byte>.Shared.Return(plane);
        }
    }

    /// <summary>
    /// jdcolor.c's ycc_rgb_convert on rows y0..y1-1 of one column, the table entries computed in the lanes:
    /// R = Y + ((91881 Cr' + 2^15) >> 16), G = Y + ((-22554 Cb' - 46802 Cr' + 2^15) >> 16),
    /// B = Y + ((116130 Cb' + 2^15) >> 16), clamped to 0..255 (Cb' = Cb - 128, Cr' = Cr - 128).
    /// In place when the outputs are the inputs' planes: each group is read before it is written.
    /// </summary>
    internal static unsafe void YccColumn(byte* ys, byte* cbs, byte* crs, byte* r, byte* g, byte* b, int y0, int y1, SimdLevel simd = SimdLevel.Avx512)
    {
        var i = y0;
        simd = (SimdLevel)Math.Min((int)simd, (int)Simd.Best);
        if (simd == SimdLevel.Avx512)
        {
            var half = Vector512.Create(OneHalf);
            var center = Vector512.Create(128);
            var max = Vector512.Create(255);
            for (; i + 16 <= y1; i += 16)
            {
                var y = Avx512F.ConvertToVector512Int32(Vector128.Load(ys + i));
                var cb = Avx512F.ConvertToVector512Int32(Vector128.Load(cbs + i)) - center;
                var cr = Avx512F.ConvertToVector512Int32(Vector128.Load(crs + i)) - center;
                var vr = y + ((cr * 91881 + half) >> ScaleBits);
                var vg = y + ((cb * -22554 + cr * -46802 + half) >> ScaleBits);
                var vb = y + ((cb * 116130 + half) >> ScaleBits);
                Vector128.Store(Avx512F.ConvertToVector128Byte(Vector512.Min(Vector512.Max(vr, Vector512<int>.Zero), max)), r + i);
                Vector128.Store(Avx512F.ConvertToVector128Byte(Vector512.Min(Vector512.Max(vg, Vector512<int>.Zero), max)), g + i);
                Vector128.Store(Avx512F.ConvertToVector128Byte(Vector512.Min(Vector512.Max(vb, Vector512<int>.Zero), max)), b + i);
            }
        }
        if (simd >= SimdLevel.Avx2)
        {
            var half = Vector256.Create(OneHalf);
            var center = Vector256.Create(128);
            var max = Vector256.Create(255);
            for (; i + 8 <= y1; i += 8)
            {
                var y = Avx2.ConvertToVector256Int32(ys + i);
                var cb = Avx2.ConvertToVector256Int32(cbs + i) - center;
                var cr = Avx2.ConvertToVector256Int32(crs + i) - center;
                var vr = y + ((cr * 91881 + half) >> ScaleBits);
                var vg = y + ((cb * -22554 + cr * -46802 + half) >> ScaleBits);
                var vb = y + ((cb * 116130 + half) >> ScaleBits);
                *(ulong*)(r + i) = Pack8(Vector256.Min(Vector256.Max(vr, Vector256<int>.Zero), max));
                *(ulong*)(g + i) = Pack8(Vector256.Min(Vector256.Max(vg, Vector256<int>.Zero), max));
                *(ulong*)(b + i) = Pack8(Vector256.Min(Vector256.Max(vb, Vector256<int>.Zero), max));
            }
        }
        fixed (byte* clampBase = ClampTable)
        fixed (int* crR = CrR, cbB = CbB, crG = CrG, cbG = CbG)
        {
            var lim = clampBase + ClampOffset;
            for (; i < y1; i++)
            {
                int yy = ys[i], cb = cbs[i], cr = crs[i];
                r[i] = lim[yy + crR[cr]];
                g[i] = lim[yy + ((cbG[cb] + crG[cr]) >> ScaleBits)];
                b[i] = lim[yy + cbB[cb]];
            }
        }
    }

    /// <summary>Eight ints already in 0..255 to their low bytes.</summary>
    internal static ulong Pack8(Vector256<int> v)
    {
        var s = Vector256.Narrow(v, v);
        return Vector256.Narrow(s, s).AsUInt64().GetElement(0);
    }

    /// <summary>
    /// Four components: YCCK goes to (Adobe-inverted) CMYK as libjpeg does it; PIL reads the result as
    /// "CMYK;I" (inverting back) and converts with its cmyk2rgb: nk - nk*v/255 with MULDIV255 rounding.
    /// </summary>
    private static unsafe void CmykColumn(byte** cols, bool ycck, byte* r, byte* g, byte* b, int y0, int y1)
    {
        byte* p0 = cols[0], p1 = cols[1], p2 = cols[2], p3 = cols[3];
        for (var i = y0; i < y1; i++)
        {
            int c, m, y;
            if (ycck)
            {
                int yy = p0[i], cb = p1[i], cr = p2[i];
                c = Clamp(255 - (yy + CrR[cr]));
                m = Clamp(255 - (yy + ((CbG[cb] + CrG[cr]) >> ScaleBits)));
                y = Clamp(255 - (yy + CbB[cb]));
            }
            else
            {
                c = p0[i];
                m = p1[i];
                y = p2[i];
            }
            int nk = p3[i];
            r[i] = Clamp(nk - MulDiv255(255 - c, nk));
            g[i] = Clamp(nk - MulDiv255(255 - m, nk));
            b[i] = Clamp(nk - MulDiv255(255 - y, nk));
        }
    }

    private static int MulDiv255(int a, int b)
    {
        var tmp = a * b + 128;
        return ((tmp >> 8) + tmp) >> 8;
    }
}
