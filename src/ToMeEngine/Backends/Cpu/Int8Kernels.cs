using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Integer micro-kernels of <see cref="Int8Gemm"/>: each sums, over all of K, the products of MR rows of quantized
/// activations with one 16-column panel of an <see cref="Int8Weight"/>, and hands each row of int32 sums, still in
/// registers, to <see cref="Int8Tile"/>'s dequantizing epilogue.
/// </summary>
/// <remarks>
/// Every kernel computes the exact integer sums Σ_k a[r, k]·q[c, k] (|sum| ≤ K·255·127 fits int32 for K below 66,000), so
/// all of them give identical tiles; they differ only in the instructions:
/// <list type="bullet">
/// <item>AvxVnni: VPDPBUSD on ymm, four u8·s8 products per int32 lane in one instruction. .NET exposes it VEX-encoded
/// only, so operands must live in ymm0–15: 6 rows × 2 vectors = 12 accumulators + 2 panel vectors + 1 broadcast.</item>
/// <item>Avx512BW / Avx2: the activations stored as int16, the panel sign-extended to int16 as it is loaded (VPMOVSXBW),
/// VPMADDWD (two int16 products per int32 lane, exact: no saturation unlike VPMADDUBSW's int16 pair sums, which overflow
/// for u8 values near 255 times weights near ±127). An accumulator lane holds one column's k0+k1 or k2+k3 partial sum;
/// the pairs are added once at the end.</item>
/// <item>Scalar: the same sums in plain C#, for machines without either.</item>
/// </list>
/// </remarks>
internal static unsafe class Int8Kernels
{
    public const int MrVnni = 6;
    public const int MrAvx512 = 8;
    public const int MrAvx2 = 2;
    public const int MrScalar = 4;
    private const int Nr = Int8Weight.PanelWidth;

    // a: MrVnni rows of u8, row stride lda bytes, 4·kq long; b: panel [kq][16][4] s8; t: where the [MrVnni, 16] tile goes
    [MethodImpl(Jit.Hot)]
    public static void KernelVnni(int kq, byte* a, int lda, sbyte* b, Int8Tile* t)
    {
        int* a0 = (int*)a, a1 = (int*)(a + lda), a2 = (int*)(a + 2 * lda);
        int* a3 = (int*)(a + 3 * lda), a4 = (int*)(a + 4 * lda), a5 = (int*)(a + 5 * lda);
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int q = 0; q < kq; q++)
        {
            var b0 = Avx.LoadVector256(b);
            var b1 = Avx.LoadVector256(b + 32);
            { var av = Vector256.Create(a0[q]).AsByte(); c00 = AvxVnni.MultiplyWideningAndAdd(c00, av, b0); c01 = AvxVnni.MultiplyWideningAndAdd(c01, av, b1); }
            { var av = Vector256.Create(a1[q]).AsByte(); c10 = AvxVnni.MultiplyWideningAndAdd(c10, av, b0); c11 = AvxVnni.MultiplyWideningAndAdd(c11, av, b1); }
            { var av = Vector256.Create(a2[q]).AsByte(); c20 = AvxVnni.MultiplyWideningAndAdd(c20, av, b0); c21 = AvxVnni.MultiplyWideningAndAdd(c21, av, b1); }
            { var av = Vector256.Create(a3[q]).AsByte(); c30 = AvxVnni.MultiplyWideningAndAdd(c30, av, b0); c31 = AvxVnni.MultiplyWideningAndAdd(c31, av, b1); }
            { var av = Vector256.Create(a4[q]).AsByte(); c40 = AvxVnni.MultiplyWideningAndAdd(c40, av, b0); c41 = AvxVnni.MultiplyWideningAndAdd(c41, av, b1); }
            { var av = Vector256.Create(a5[q]).AsByte(); c50 = AvxVnni.MultiplyWideningAndAdd(c50, av, b0); c51 = AvxVnni.MultiplyWideningAndAdd(c51, av, b1); }
            b += 4 * Nr;
        }
        t->Row(0, c00, c01);
        t->Row(1, c10, c11);
        t->Row(2, c20, c21);
        t->Row(3, c30, c31);
        t->Row(4, c40, c41);
        t->Row(5, c50, c51);
    }

    // a: MrAvx512 rows of int16 (u8 values), row stride lda shorts, 4·kq long; b, t as above
    [MethodImpl(Jit.Hot)]
    public static void KernelAvx512(int kq, short* a, int lda, sbyte* b, Int8Tile* t)
    {
        long* a0 = (long*)a, a1 = (long*)(a + lda), a2 = (long*)(a + 2 * lda), a3 = (long*)(a + 3 * lda);
        long* a4 = (long*)(a + 4 * lda), a5 = (long*)(a + 5 * lda), a6 = (long*)(a + 6 * lda), a7 = (long*)(a + 7 * lda);
        Vector512<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<int> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int q = 0; q < kq; q++)
        {
            // Columns 0–7 and 8–15, each lane pair (k0, k1), (k2, k3) of one column.
            var b0 = Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(b));
            var b1 = Avx512BW.ConvertToVector512Int16(Avx.LoadVector256(b + 32));
            { var av = Vector512.Create(a0[q]).AsInt16(); c00 += Avx512BW.MultiplyAddAdjacent(av, b0); c01 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            { var av = Vector512.Create(a1[q]).AsInt16(); c10 += Avx512BW.MultiplyAddAdjacent(av, b0); c11 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            { var av = Vector512.Create(a2[q]).AsInt16(); c20 += Avx512BW.MultiplyAddAdjacent(av, b0); c21 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            { var av = Vector512.Create(a3[q]).AsInt16(); c30 += Avx512BW.MultiplyAddAdjacent(av, b0); c31 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            { var av = Vector512.Create(a4[q]).AsInt16(); c40 += Avx512BW.MultiplyAddAdjacent(av, b0); c41 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            { var av = Vector512.Create(a5[q]).AsInt16(); c50 += Avx512BW.MultiplyAddAdjacent(av, b0); c51 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            { var av = Vector512.Create(a6[q]).AsInt16(); c60 += Avx512BW.MultiplyAddAdjacent(av, b0); c61 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            { var av = Vector512.Create(a7[q]).AsInt16(); c70 += Avx512BW.MultiplyAddAdjacent(av, b0); c71 += Avx512BW.MultiplyAddAdjacent(av, b1); }
            b += 4 * Nr;
        }
        t->Row(0, PairSums(c00, c01));
        t->Row(1, PairSums(c10, c11));
        t->Row(2, PairSums(c20, c21));
        t->Row(3, PairSums(c30, c31));
        t->Row(4, PairSums(c40, c41));
        t->Row(5, PairSums(c50, c51));
        t->Row(6, PairSums(c60, c61));
        t->Row(7, PairSums(c70, c71));
    }

    // lo: columns 0–7, hi: 8–15, lanes (2c, 2c + 1) = column c's two partial sums → column c's sum in lane c.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> PairSums(Vector512<int> lo, Vector512<int> hi)
    {
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        return Avx512F.PermuteVar16x32x2(lo, even, hi) + Avx512F.PermuteVar16x32x2(lo, odd, hi);
    }

    // a: MrAvx2 rows of int16, row stride lda shorts; b, t as above. Four columns per ymm: 4 × 2 accumulators per k-quad.
    [MethodImpl(Jit.Hot)]
    public static void KernelAvx2(int kq, short* a, int lda, sbyte* b, Int8Tile* t)
    {
        long* a0 = (long*)a, a1 = (long*)(a + lda);
        Vector256<int> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<int> c10 = default, c11 = default, c12 = default, c13 = default;
        for (int q = 0; q < kq; q++)
        {
            var b0 = Avx2Extend(b);
            var b1 = Avx2Extend(b + 16);
            var b2 = Avx2Extend(b + 32);
            var b3 = Avx2Extend(b + 48);
            var x0 = Vector256.Create(a0[q]).AsInt16();
            var x1 = Vector256.Create(a1[q]).AsInt16();
            c00 += Avx2MultiplyAdd(x0, b0); c01 += Avx2MultiplyAdd(x0, b1); c02 += Avx2MultiplyAdd(x0, b2); c03 += Avx2MultiplyAdd(x0, b3);
            c10 += Avx2MultiplyAdd(x1, b0); c11 += Avx2MultiplyAdd(x1, b1); c12 += Avx2MultiplyAdd(x1, b2); c13 += Avx2MultiplyAdd(x1, b3);
            b += 4 * Nr;
        }
        t->Row(0, PairSums(c00, c01), PairSums(c02, c03));
        t->Row(1, PairSums(c10, c11), PairSums(c12, c13));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Avx2Extend(sbyte* b) => Avx2.ConvertToVector256Int16(b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Avx2MultiplyAdd(Vector256<short> x, Vector256<short> y) => Avx2.MultiplyAddAdjacent(x, y);

    // lo: columns 0–3, hi: 4–7 with lanes (2c, 2c + 1) per column → the eight pair sums in column order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> PairSums(Vector256<int> lo, Vector256<int> hi)
    {
        // hadd within 128-bit halves gives [c0 c1 c4 c5 | c2 c3 c6 c7]; the qword permute restores column order.
        var sums = Avx2.HorizontalAdd(lo, hi);
        return Avx2.Permute4x64(sums.AsInt64(), 0b11_01_10_00).AsInt32();
    }

    // a: MrScalar rows of u8, row stride lda bytes; b, t as above
    [MethodImpl(Jit.Hot)]
    public static void KernelScalar(int kq, byte* a, int lda, sbyte* b, Int8Tile* t)
    {
        int* sums = stackalloc int[Nr];
        for (int r = 0; r < MrScalar; r++)
        {
            byte* row = a + (long)r * lda;
            for (int c = 0; c < Nr; c++)
            {
                int sum = 0;
                sbyte* w = b + c * 4;
                for (int q = 0; q < kq; q++)
                {
                    sum += row[4 * q] * w[0] + row[4 * q + 1] * w[1] + row[4 * q + 2] * w[2] + row[4 * q + 3] * w[3];
                    w += 4 * Nr;
                }
                sums[c] = sum;
            }
            t->Row(r, sums);
        }
    }
}
