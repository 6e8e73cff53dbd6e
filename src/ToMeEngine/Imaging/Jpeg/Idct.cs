namespace ToMe.Imaging.Jpeg;

/// <summary>
/// libjpeg-turbo's accurate integer inverse DCT (jidctint.c, "islow": Loeffler-Ligtenberg-Moschytz
/// with 13-bit constants, 2 extra bits between passes). The arithmetic, including rounding and the
/// wrap-around range-limit table, is copied so that the samples equal libjpeg-turbo's (PIL's) exactly.
/// The 8x8 samples are stored column by column (sample (x, y) at x * stride + y), the layout of
/// <see cref="PlanarImage"/>.
/// </summary>
internal static unsafe class Idct
{
    private const int ConstBits = 13;
    private const int Pass1Bits = 2;
    private const int Fix0_298631336 = 2446, Fix0_390180644 = 3196, Fix0_541196100 = 4433,
        Fix0_765366865 = 6270, Fix0_899976223 = 7373, Fix1_175875602 = 9633, Fix1_501321110 = 12299,
        Fix1_847759065 = 15137, Fix1_961570560 = 16069, Fix2_053119869 = 16819, Fix2_562915447 = 20995,
        Fix3_072711026 = 25172;

    // libjpeg's post-IDCT range limit: index = value & 1023; values beyond +-384 wrap as in the C code.
    private static readonly byte[] RangeLimit = BuildRangeLimit();

    private static byte[] BuildRangeLimit()
    {
        var t = new byte[1024];
        for (var i = 0; i < 1024; i++)
        {
            var x = i < 512 ? i : i - 1024;
            t[i] = (byte)Math.Clamp(x + 128, 0, 255);
        }
        return t;
    }

    /// <summary>Checked entry for tests: the block's columns at output[outOffset + x * stride].</summary>
    public static void Islow(ReadOnlySpan<short> coefs, int[] quant, byte[] output, int outOffset, int stride, bool allowSimd = true)
    {
        if (coefs.Length < 64 || quant.Length < 64 || outOffset < 0 || (long)outOffset + 7L * stride + 8 > output.Length)
            throw new ArgumentOutOfRangeException(nameof(outOffset));
        fixed (short* c = coefs)
        fixed (int* q = quant)
        fixed (byte* o = &output[outOffset])
            Islow(c, q, o, stride, allowSimd);
    }

    public static void Islow(short* coef, int* q, byte* output, int stride, bool allowSimd = true)
    {
        if (allowSimd && IdctAvx2.IsSupported)
        {
            IdctAvx2.Islow(coef, q, output, stride);
            return;
        }
        fixed (byte* l = RangeLimit)
            Islow(coef, q, output, stride, l);
    }

    /// <summary>A block with only a DC coefficient: both passes' DC shortcuts, so the same value as the full transform.</summary>
    public static void DcOnly(short dc, int q0, byte* output, int stride)
    {
        var ws = dc * q0 << Pass1Bits;
        var v = RangeLimit[((ws + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3)) & 1023];
        var fill = v * 0x0101010101010101UL;
        for (var r = 0; r < 8; r++)
            *(ulong*)(output + r * stride) = fill;
    }

    private static void Islow(short* coef, int* q, byte* output, int stride, byte* limit)
    {
        int* ws = stackalloc int[64];

        for (var col = 0; col < 8; col++)
        {
            if (coef[8 + col] == 0 && coef[16 + col] == 0 && coef[24 + col] == 0 && coef[32 + col] == 0 &&
                coef[40 + col] == 0 && coef[48 + col] == 0 && coef[56 + col] == 0)
            {
                var dc = coef[col] * q[col] << Pass1Bits;
                for (var r = 0; r < 8; r++) ws[r * 8 + col] = dc;
                continue;
            }

            int z2 = coef[16 + col] * q[16 + col];
            int z3 = coef[48 + col] * q[48 + col];
            var z1 = (z2 + z3) * Fix0_541196100;
            var tmp2 = z1 + z3 * -Fix1_847759065;
            var tmp3 = z1 + z2 * Fix0_765366865;

            z2 = coef[col] * q[col];
            z3 = coef[32 + col] * q[32 + col];
            var tmp0 = (z2 + z3) << ConstBits;
            var tmp1 = (z2 - z3) << ConstBits;

            int tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

            tmp0 = coef[56 + col] * q[56 + col];
            tmp1 = coef[40 + col] * q[40 + col];
            tmp2 = coef[24 + col] * q[24 + col];
            tmp3 = coef[8 + col] * q[8 + col];
            Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);

            const int s1 = ConstBits - Pass1Bits, r1 = 1 << (s1 - 1);
            ws[col] = (tmp10 + tmp3 + r1) >> s1;
            ws[56 + col] = (tmp10 - tmp3 + r1) >> s1;
            ws[8 + col] = (tmp11 + tmp2 + r1) >> s1;
            ws[48 + col] = (tmp11 - tmp2 + r1) >> s1;
            ws[16 + col] = (tmp12 + tmp1 + r1) >> s1;
            ws[40 + col] = (tmp12 - tmp1 + r1) >> s1;
            ws[24 + col] = (tmp13 + tmp0 + r1) >> s1;
            ws[32 + col] = (tmp13 - tmp0 + r1) >> s1;
        }

        for (var row = 0; row < 8; row++)
        {
            var w = ws + row * 8;
            // Column-major output: sample x of this row at o[x * stride].
            var o = output + row;
            if (w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0)
            {
                var v = limit[((w[0] + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3)) & 1023];
                for (var x = 0; x < 8; x++) o[x * stride] = v;
                continue;
            }

            int z2 = w[2], z3 = w[6];
            var z1 = (z2 + z3) * Fix0_541196100;
            var tmp2 = z1 + z3 * -Fix1_847759065;
            var tmp3 = z1 + z2 * Fix0_765366865;
            var tmp0 = (w[0] + w[4]) << ConstBits;
            var tmp1 = (w[0] - w[4]) << ConstBits;

            int tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

            tmp0 = w[7];
            tmp1 = w[5];
            tmp2 = w[3];
            tmp3 = w[1];
            Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);

            const int s2 = ConstBits + Pass1Bits + 3, r2 = 1 << (s2 - 1);
            o[0] = limit[((tmp10 + tmp3 + r2) >> s2) & 1023];
            o[7 * stride] = limit[((tmp10 - tmp3 + r2) >> s2) & 1023];
            o[stride] = limit[((tmp11 + tmp2 + r2) >> s2) & 1023];
            o[6 * stride] = limit[((tmp11 - tmp2 + r2) >> s2) & 1023];
            o[2 * stride] = limit[((tmp12 + tmp1 + r2) >> s2) & 1023];
            o[5 * stride] = limit[((tmp12 - tmp1 + r2) >> s2) & 1023];
            o[3 * stride] = limit[((tmp13 + tmp0 + r2) >> s2) & 1023];
            o[4 * stride] = limit[((tmp13 - tmp0 + r2) >> s2) & 1023];
        }
    }

    /// <summary>The odd part shared by both passes; inputs are coefficients 7,5,3,1.</summary>
    private static void Odd(ref int tmp0, ref int tmp1, ref int tmp2, ref int tmp3)
    {
        var z1 = tmp0 + tmp3;
        var z2 = tmp1 + tmp2;
        var z3 = tmp0 + tmp2;
        var z4 = tmp1 + tmp3;
        var z5 = (z3 + z4) * Fix1_175875602;

        tmp0 *= Fix0_298631336;
        tmp1 *= Fix2_053119869;
        tmp2 *= Fix3_072711026;
        tmp3 *= Fix1_501321110;
        z1 *= -Fix0_899976223;
        z2 *= -Fix2_562915447;
        z3 *= -Fix1_961570560;
        z4 *= -Fix0_390180644;

        z3 += z5;
        z4 += z5;

        tmp0 += z1 + z3;
        tmp1 += z2 + z4;
        tmp2 += z2 + z3;
        tmp3 += z1 + z4;
    }
}
