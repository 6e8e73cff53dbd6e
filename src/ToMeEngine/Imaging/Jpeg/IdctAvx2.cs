using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Imaging.Jpeg;

/// <summary>
/// The islow IDCT with AVX2: pass 1 runs the 8 columns in the 8 lanes, the workspace is transposed and
/// pass 2 runs the 8 rows the same way, leaving register x with output column x, which is stored as is
/// (column-major output). Same integer operations in the same order as the scalar code (whose all-zero
/// shortcuts give the same values as the full formulas), hence identical samples.
/// </summary>
internal static unsafe class IdctAvx2
{
    public static bool IsSupported => Avx2.IsSupported;

    private const int ConstBits = 13, Pass1Bits = 2;

    public static void Islow(short* coef, int* q, byte* output, int stride)
    {
        Vector256<int> c0 = Load(coef, q, 0), c1 = Load(coef, q, 1), c2 = Load(coef, q, 2), c3 = Load(coef, q, 3),
            c4 = Load(coef, q, 4), c5 = Load(coef, q, 5), c6 = Load(coef, q, 6), c7 = Load(coef, q, 7);

        Butterfly(ref c0, ref c1, ref c2, ref c3, ref c4, ref c5, ref c6, ref c7, ConstBits - Pass1Bits);
        Transpose(ref c0, ref c1, ref c2, ref c3, ref c4, ref c5, ref c6, ref c7);
        Butterfly(ref c0, ref c1, ref c2, ref c3, ref c4, ref c5, ref c6, ref c7, ConstBits + Pass1Bits + 3);

        var cols0 = Pack(c0, c1, c2, c3);
        var cols1 = Pack(c4, c5, c6, c7);
        for (var r = 0; r < 4; r++)
        {
            *(ulong*)(output + r * stride) = cols0.GetElement(r);
            *(ulong*)(output + (r + 4) * stride) = cols1.GetElement(r);
        }
    }

    private static Vector256<int> Load(short* coef, int* q, int row) =>
        Avx2.ConvertToVector256Int32(coef + row * 8) * Vector256.Load(q + row * 8);

    /// <summary>
    /// libjpeg's post-IDCT range limit of four columns, as four 8-byte columns: the table is indexed by the
    /// low 10 bits of the value (a wrap-around for out-of-range values) and holds clamp(v + 128, 0, 255) of
    /// their signed reading, which the saturating packs provide.
    /// </summary>
    private static Vector256<ulong> Pack(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d)
    {
        var center = Vector256.Create(128);
        a = ((a << 22) >> 22) + center;
        b = ((b << 22) >> 22) + center;
        c = ((c << 22) >> 22) + center;
        d = ((d << 22) >> 22) + center;
        // Per 128-bit lane: bytes of a, b, c, d rows 0-3 | rows 4-7; gather each column's two halves.
        var bytes = Avx2.PackUnsignedSaturate(Avx2.PackSignedSaturate(a, b), Avx2.PackSignedSaturate(c, d));
        return Avx2.PermuteVar8x32(bytes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsUInt64();
    }

    private static void Butterfly(ref Vector256<int> v0, ref Vector256<int> v1, ref Vector256<int> v2, ref Vector256<int> v3,
        ref Vector256<int> v4, ref Vector256<int> v5, ref Vector256<int> v6, ref Vector256<int> v7, int shift)
    {
        var z2 = v2;
        var z3 = v6;
        var z1 = (z2 + z3) * 4433;
        var tmp2 = z1 + z3 * -15137;
        var tmp3 = z1 + z2 * 6270;
        var tmp0 = (v0 + v4) << ConstBits;
        var tmp1 = (v0 - v4) << ConstBits;
        Vector256<int> tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

        tmp0 = v7;
        tmp1 = v5;
        tmp2 = v3;
        tmp3 = v1;
        z1 = tmp0 + tmp3;
        z2 = tmp1 + tmp2;
        z3 = tmp0 + tmp2;
        var z4 = tmp1 + tmp3;
        var z5 = (z3 + z4) * 9633;
        tmp0 *= 2446;
        tmp1 *= 16819;
        tmp2 *= 25172;
        tmp3 *= 12299;
        z1 *= -7373;
        z2 *= -20995;
        z3 *= -16069;
        z4 *= -3196;
        z3 += z5;
        z4 += z5;
        tmp0 += z1 + z3;
        tmp1 += z2 + z4;
        tmp2 += z2 + z3;
        tmp3 += z1 + z4;

        var round = Vector256.Create(1 << (shift - 1));
        v0 = (tmp10 + tmp3 + round) >> shift;
        v7 = (tmp10 - tmp3 + round) >> shift;
        v1 = (tmp11 + tmp2 + round) >> shift;
        v6 = (tmp11 - tmp2 + round) >> shift;
        v2 = (tmp12 + tmp1 + round) >> shift;
        v5 = (tmp12 - tmp1 + round) >> shift;
        v3 = (tmp13 + tmp0 + round) >> shift;
        v4 = (tmp13 - tmp0 + round) >> shift;
    }

    private static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        var t0 = Avx2.UnpackLow(r0, r1);
        var t1 = Avx2.UnpackHigh(r0, r1);
        var t2 = Avx2.UnpackLow(r2, r3);
        var t3 = Avx2.UnpackHigh(r2, r3);
        var t4 = Avx2.UnpackLow(r4, r5);
        var t5 = Avx2.UnpackHigh(r4, r5);
        var t6 = Avx2.UnpackLow(r6, r7);
        var t7 = Avx2.UnpackHigh(r6, r7);
        var u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32();
        var u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
        var u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32();
        var u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
        var u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32();
        var u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
        var u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32();
        var u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
        r0 = Avx2.Permute2x128(u0, u4, 0x20);
        r1 = Avx2.Permute2x128(u1, u5, 0x20);
        r2 = Avx2.Permute2x128(u2, u6, 0x20);
        r3 = Avx2.Permute2x128(u3, u7, 0x20);
        r4 = Avx2.Permute2x128(u0, u4, 0x31);
        r5 = Avx2.Permute2x128(u1, u5, 0x31);
        r6 = Avx2.Permute2x128(u2, u6, 0x31);
        r7 = Avx2.Permute2x128(u3, u7, 0x31);
    }
}
