namespace ToMe.Imaging.Jpeg;

/// <summary>
/// Upsampling (jdsample.c, fancy mode) and colour conversion (jdcolor.c) as libjpeg-turbo does them,
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

    private RgbImage Finish()
    {
        if (progressive)
        {
            foreach (var c in comps)
            {
                if (c.Quant is null) continue; // never scanned: stays zero
                for (var by = 0; by < c.CompBlocksH; by++)
                    for (var bx = 0; bx < c.CompBlocksW; bx++)
                        Idct.Islow(c.Coefs.AsSpan((by * c.BlocksW + bx) * 64, 64), c.Quant, c.Plane,
                            by * 8 * c.PlaneStride + bx * 8, c.PlaneStride);
            }
        }

        var stride = mcusX * maxH * 8;
        var planes = new byte[comps.Length][];
        for (var i = 0; i < comps.Length; i++)
            planes[i] = Upsample(comps[i], stride);

        var image = new RgbImage(width, height);
        var px = image.Pixels;
        if (comps.Length == 1)
        {
            var y = planes[0];
            for (var row = 0; row < height; row++)
            {
                int s = row * stride, d = row * width * 3;
                for (var x = 0; x < width; x++, d += 3)
                    px[d] = px[d + 1] = px[d + 2] = y[s + x];
            }
            return image;
        }

        if (comps.Length == 3)
        {
            // libjpeg's default colour space: JFIF => YCbCr; Adobe transform 0 => RGB; else ids 'R','G','B' => RGB.
            var isRgb = !sawJfif && (sawAdobe ? adobeTransform == 0 : comps[0].Id == 'R' && comps[1].Id == 'G' && comps[2].Id == 'B');
            byte[] p0 = planes[0], p1 = planes[1], p2 = planes[2];
            for (var row = 0; row < height; row++)
            {
                int s = row * stride, d = row * width * 3;
                if (isRgb)
                {
                    for (var x = 0; x < width; x++, d += 3)
                    {
                        px[d] = p0[s + x];
                        px[d + 1] = p1[s + x];
                        px[d + 2] = p2[s + x];
                    }
                    continue;
                }
                YccRow(p0.AsSpan(s, width), p1.AsSpan(s, width), p2.AsSpan(s, width), px.AsSpan(d, width * 3));
            }
            return image;
        }

        // Four components: Adobe transform 2 means YCCK, which libjpeg turns into (Adobe-inverted) CMYK.
        // PIL reads the result as "CMYK;I" (inverting back) and converts with its cmyk2rgb.
        var ycck = sawAdobe && adobeTransform == 2;
        {
            byte[] p0 = planes[0], p1 = planes[1], p2 = planes[2], p3 = planes[3];
            for (var row = 0; row < height; row++)
            {
                int s = row * stride, d = row * width * 3;
                for (var x = 0; x < width; x++, d += 3)
                {
                    int c, m, y;
                    if (ycck)
                    {
                        int yy = p0[s + x], cb = p1[s + x], cr = p2[s + x];
                        c = Clamp(255 - (yy + CrR[cr]));
                        m = Clamp(255 - (yy + ((CbG[cb] + CrG[cr]) >> ScaleBits)));
                        y = Clamp(255 - (yy + CbB[cb]));
                    }
                    else
                    {
                        c = p0[s + x];
                        m = p1[s + x];
                        y = p2[s + x];
                    }
                    // "CMYK;I" inversion, then Pillow's cmyk2rgb: nk - nk*v/255 with MULDIV255 rounding.
                    int nk = p3[s + x];
                    px[d] = Clamp(nk - MulDiv255(255 - c, nk));
                    px[d + 1] = Clamp(nk - MulDiv255(255 - m, nk));
                    px[d + 2] = Clamp(nk - MulDiv255(255 - y, nk));
                }
            }
        }
        return image;
    }

    private static unsafe void YccRow(ReadOnlySpan<byte> ys, ReadOnlySpan<byte> cbs, ReadOnlySpan<byte> crs, Span<byte> rgb)
    {
        fixed (byte* y = ys, cb = cbs, cr = crs, o = rgb, clampBase = ClampTable)
        fixed (int* crR = CrR, cbB = CbB, crG = CrG, cbG = CbG)
        {
            var lim = clampBase + ClampOffset;
            var n = ys.Length;
            for (var x = 0; x < n; x++)
            {
                int yy = y[x], b = cb[x], r = cr[x];
                var d = o + 3 * x;
                d[0] = lim[yy + crR[r]];
                d[1] = lim[yy + ((cbG[b] + crG[r]) >> ScaleBits)];
                d[2] = lim[yy + cbB[b]];
            }
        }
    }

    private static int MulDiv255(int a, int b)
    {
        var tmp = a * b + 128;
        return ((tmp >> 8) + tmp) >> 8;
    }

    /// <summary>
    /// Brings one component to full resolution in a plane of the given stride (>= width), rows 0..height-1.
    /// Rows above the first and below the last real row repeat the edge row, as libjpeg's context
    /// pointers do; columns use only the component's downsampled width.
    /// </summary>
    private byte[] Upsample(JpegComponent c, int stride)
    {
        int hx = maxH / c.H, vx = maxV / c.V;
        if (hx == 1 && vx == 1) return c.Plane; // same stride by construction
        var src = c.Plane;
        var ps = c.PlaneStride;
        int dw = c.DownW, dh = c.DownH;
        var dst = new byte[checked(stride * height)];

        if (hx == 2 && vx == 1 && dw > 2)
        {
            for (var y = 0; y < height; y++)
                H2V1Fancy(src.AsSpan(y * ps, dw), dst.AsSpan(y * stride, 2 * dw));
        }
        else if (hx == 1 && vx == 2)
        {
            for (var y = 0; y < height; y++)
            {
                var inRow = y >> 1;
                var near = (y & 1) == 0 ? Math.Max(inRow - 1, 0) : Math.Min(inRow + 1, dh - 1);
                var bias = (y & 1) == 0 ? 1 : 2;
                var a = src.AsSpan(inRow * ps, dw);
                var b = src.AsSpan(near * ps, dw);
                var o = dst.AsSpan(y * stride, dw);
                for (var x = 0; x < dw; x++)
                    o[x] = (byte)((a[x] * 3 + b[x] + bias) >> 2);
            }
        }
        else if (hx == 2 && vx == 2 && dw > 2)
        {
            for (var y = 0; y < height; y++)
            {
                var inRow = y >> 1;
                var near = (y & 1) == 0 ? Math.Max(inRow - 1, 0) : Math.Min(inRow + 1, dh - 1);
                H2V2Fancy(src.AsSpan(inRow * ps, dw), src.AsSpan(near * ps, dw), dst.AsSpan(y * stride, 2 * dw));
            }
        }
        else
        {
            // int_upsample / h2v1_upsample / h2v2_upsample: plain replication.
            for (var y = 0; y < height; y++)
            {
                var s = src.AsSpan(y / vx * ps, dw);
                var o = dst.AsSpan(y * stride, dw * hx);
                for (var x = 0; x < dw; x++)
                    o.Slice(x * hx, hx).Fill(s[x]);
            }
        }
        return dst;
    }

    private static void H2V1Fancy(ReadOnlySpan<byte> s, Span<byte> o)
    {
        var n = s.Length;
        int v = s[0];
        o[0] = (byte)v;
        o[1] = (byte)((v * 3 + s[1] + 2) >> 2);
        for (var i = 1; i < n - 1; i++)
        {
            v = s[i] * 3;
            o[2 * i] = (byte)((v + s[i - 1] + 1) >> 2);
            o[2 * i + 1] = (byte)((v + s[i + 1] + 2) >> 2);
        }
        v = s[n - 1];
        o[2 * n - 2] = (byte)((v * 3 + s[n - 2] + 1) >> 2);
        o[2 * n - 1] = (byte)v;
    }

    private static void H2V2Fancy(ReadOnlySpan<byte> s0, ReadOnlySpan<byte> s1, Span<byte> o)
    {
        var n = s0.Length;
        var thisSum = s0[0] * 3 + s1[0];
        var nextSum = s0[1] * 3 + s1[1];
        o[0] = (byte)((thisSum * 4 + 8) >> 4);
        o[1] = (byte)((thisSum * 3 + nextSum + 7) >> 4);
        var lastSum = thisSum;
        thisSum = nextSum;
        for (var i = 1; i < n - 1; i++)
        {
            nextSum = s0[i + 1] * 3 + s1[i + 1];
            o[2 * i] = (byte)((thisSum * 3 + lastSum + 8) >> 4);
            o[2 * i + 1] = (byte)((thisSum * 3 + nextSum + 7) >> 4);
            lastSum = thisSum;
            thisSum = nextSum;
        }
        o[2 * n - 2] = (byte)((thisSum * 3 + lastSum + 8) >> 4);
        o[2 * n - 1] = (byte)((thisSum * 4 + 7) >> 4);
    }
}
