using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

internal static unsafe partial class GemmKernels
{
    /// <summary>
    /// C = A·B for Mr512 rows of A (from k = 0) and the first eight columns of a packed panel: the last key panel of
    /// attention's q·kᵀ where it holds at most eight keys (197 = 6·32 + 5, 577 = 18·32 + 1).
    /// </summary>
    /// <remarks>
    /// Kernel512Narrow computes sixteen columns per row, a broadcast and an FMA per row and k, most of them on padding
    /// here. A vector holds two rows' eight columns instead (rows 2i and 2i + 1 in its halves): per k, six FMAs against the
    /// panel's eight columns repeated. A row pair's vector is built two ways, half the pairs each, so that neither the
    /// shuffle port nor the load ports limit: a two-source permute of the two rows' sixteen k loaded at once (a shuffle),
    /// or two broadcast loads joined by a bitwise select (a load and a cheap logic op; the second broadcast folds into it).
    /// Measured on a 197-token head (three strips, 72 + 72 + 54 rows × the 5-key panel): 1.5–1.7 µs against the narrow
    /// kernel's 2.2–2.6 µs (permutes only: 1.9–2.2; selects only: 2.3–2.4). Each element is still one FMA chain over k in
    /// increasing order from 0, so the bits are Kernel512Narrow's. All twelve rows are stored, eight columns each.
    /// </remarks>
    [MethodImpl(Jit.Hot)]
    public static void Kernel512RowPairs(int kc, float* a, int lda, float* b, float* c, int ldc)
    {
        // Four row pointers three rows apart reach the twelve rows in single addressing modes, as StridedRows.
        nint ld = lda;
        float* r0 = a, r3 = a + 3 * ld, r6 = a + 6 * ld, r9 = a + 9 * ld;
        var c0 = Vector512<float>.Zero;
        var c1 = Vector512<float>.Zero;
        var c2 = Vector512<float>.Zero;
        var c3 = Vector512<float>.Zero;
        var c4 = Vector512<float>.Zero;
        var c5 = Vector512<float>.Zero;
        // Rows 0–5, per 16 k: one load per row, then per k a two-source permute per pair, [first's k × 8, second's k × 8];
        // rows 6–11: per k, the two broadcasts selected into halves.
        var index = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16, 16);
        var step = Vector512<int>.One;
        var upper = Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(8)).AsSingle();
        for (int k0 = 0; k0 < kc; k0 += 16)
        {
            var a0 = Vector512.Load(r0); var a1 = Vector512.Load(r0 + ld);
            var a2 = Vector512.Load(r0 + 2 * ld); var a3 = Vector512.Load(r3);
            var a4 = Vector512.Load(r3 + ld); var a5 = Vector512.Load(r3 + 2 * ld);
            var at = index;
            for (int p = 0; p < 16; p++)
            {
                var b0 = Avx512DQ.BroadcastVector256ToVector512(b);
                c0 = Vector512.FusedMultiplyAdd(Avx512F.PermuteVar16x32x2(a0, at, a1), b0, c0);
                c1 = Vector512.FusedMultiplyAdd(Avx512F.PermuteVar16x32x2(a2, at, a3), b0, c1);
                c2 = Vector512.FusedMultiplyAdd(Avx512F.PermuteVar16x32x2(a4, at, a5), b0, c2);
                c3 = Vector512.FusedMultiplyAdd(Pair(r6 + p, r6 + ld + p, upper), b0, c3);
                c4 = Vector512.FusedMultiplyAdd(Pair(r6 + 2 * ld + p, r9 + p, upper), b0, c4);
                c5 = Vector512.FusedMultiplyAdd(Pair(r9 + ld + p, r9 + 2 * ld + p, upper), b0, c5);
                at += step;
                b += Nr;
            }
            r0 += 16;
            r3 += 16;
            r6 += 16;
            r9 += 16;
        }
        StorePair(c0, c, ldc);
        StorePair(c1, c + 2 * ldc, ldc);
        StorePair(c2, c + 4 * ldc, ldc);
        StorePair(c3, c + 6 * ldc, ldc);
        StorePair(c4, c + 8 * ldc, ldc);
        StorePair(c5, c + 10 * ldc, ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pair(float* first, float* second, Vector512<float> upper) =>
        Vector512.ConditionalSelect(upper, Vector512.Create(*second), Vector512.Create(*first));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair(Vector512<float> v, float* c, int ldc)
    {
        v.GetLower().Store(c);
        v.GetUpper().Store(c + ldc);
    }
}
