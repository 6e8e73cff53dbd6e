using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

/// <summary>Operand packing for the micro-kernels (see <see cref="GemmKernels"/>).</summary>
/// <remarks>
/// The hot loops here and in the GEMM driver skip tiered compilation (AggressiveOptimization): their tier-0 code
/// is several times slower and would otherwise dominate the first forward passes.
/// </remarks>
internal static unsafe class Packing
{
    private const int Nr = PackedWeight.PanelWidth;

    /// <summary>
    /// Packs a K×N right-hand operand into 32-wide panels. <paramref name="transposed"/>: the source is stored
    /// [n, k] (element (k, j) at src[j·ld + k]); otherwise [k, n] (element (k, j) at src[k·ld + j]).
    /// Padding columns past n are written as zeros.
    /// </summary>
    [MethodImpl(Jit.Hot)]
    public static void PackPanels(float* src, int ld, bool transposed, int n, int k, float* dst)
    {
        for (int j0 = 0; j0 < n; j0 += Nr)
        {
            int cols = Math.Min(Nr, n - j0);
            float* panel = dst + (long)j0 * k;
            if (transposed)
            {
                int p0 = Avx512F.IsSupported ? Transpose16x16Blocks(src + (long)j0 * ld, ld, k, cols, panel)
                    : cols == Nr && Sse.IsSupported ? Transpose4x4Blocks(src + (long)j0 * ld, ld, k, Nr, 1f, panel) : 0;
                // Leftover k columns and a partial last panel: walk each source row (sequential reads) and
                // scatter with stride 32 into the panel.
                for (int c = 0; c < cols; c++)
                {
                    float* row = src + (long)(j0 + c) * ld;
                    for (int p = p0; p < k; p++)
                    {
                        panel[p * Nr + c] = row[p];
                    }
                }
                for (int c = cols; c < Nr; c++)
                {
                    for (int p = p0; p < k; p++)
                    {
                        panel[p * Nr + c] = 0f;
                    }
                }
            }
            else
            {
                for (int p = 0; p < k; p++)
                {
                    var from = new ReadOnlySpan<float>(src + (long)p * ld + j0, cols);
                    var to = new Span<float>(panel + p * Nr, Nr);
                    from.CopyTo(to);
                    to[cols..].Clear();
                }
            }
        }
    }

    // a: [rows, kc] with row stride lda → dst: ⌈rows/mr⌉ micro-panels of [kc, mr], rows past the end zero.
    [MethodImpl(Jit.Hot)]
    public static void PackA(float* a, int lda, int rows, int kc, int mr, float alpha, float* dst)
    {
        for (int i0 = 0; i0 < rows; i0 += mr)
        {
            int valid = Math.Min(mr, rows - i0);
            int p = 0;
            if (valid == mr && mr % 4 == 0 && Sse.IsSupported)
            {
                p = Transpose4x4Blocks(a + (long)i0 * lda, lda, kc, mr, alpha, dst);
            }
            for (int r = 0; r < valid; r++)
            {
                float* src = a + (long)(i0 + r) * lda;
                float* d = dst + r;
                for (int q = p; q < kc; q++)
                {
                    d[q * mr] = src[q] * alpha;
                }
            }
            for (int r = valid; r < mr; r++)
            {
                for (int q = p; q < kc; q++)
                {
                    dst[q * mr + r] = 0f;
                }
            }
            dst += mr * kc;
        }
    }

    // One transposed panel's first k / 16 · 16 rows: panel[p·32 + c] = src[c·ld + p] for the cols (≤ 32) source rows,
    // zero for c ≥ cols, in 16 × 16 blocks of 512-bit shuffles (64 per block: a quarter of an instruction per element,
    // where 4 × 4 SSE blocks take more than one; attention transposes every head's keys this way). Returns the rows done.
    [MethodImpl(Jit.Hot)]
    private static int Transpose16x16Blocks(float* src, int ld, int k, int cols, float* panel)
    {
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            for (int c0 = 0; c0 < Nr && c0 < cols; c0 += 16)
            {
                float* s = src + (long)c0 * ld + p;
                int live = cols - c0;
                Rows4(s, ld, 0, live, out var b0, out var b1, out var b2, out var b3);
                Rows4(s, ld, 4, live, out var b4, out var b5, out var b6, out var b7);
                Rows4(s, ld, 8, live, out var b8, out var b9, out var b10, out var b11);
                Rows4(s, ld, 12, live, out var b12, out var b13, out var b14, out var b15);
                float* d = panel + p * Nr + c0;
                Columns4(b0, b4, b8, b12, d);
                Columns4(b1, b5, b9, b13, d + Nr);
                Columns4(b2, b6, b10, b14, d + 2 * Nr);
                Columns4(b3, b7, b11, b15, d + 3 * Nr);
            }
            if (cols <= 16)
            {
                for (int q = 0; q < 16; q++)
                    Vector512<float>.Zero.Store(panel + (p + q) * Nr + 16);
            }
        }
        return p;
    }

    // Source rows r0 … r0 + 3 (zero past live) → b[e] holding, in 128-bit lane j, element 4j + e of each of the four rows.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4(float* s, int ld, int r0, int live, out Vector512<float> b0, out Vector512<float> b1,
        out Vector512<float> b2, out Vector512<float> b3)
    {
        var x0 = r0 < live ? Vector512.Load(s + (long)r0 * ld) : Vector512<float>.Zero;
        var x1 = r0 + 1 < live ? Vector512.Load(s + (long)(r0 + 1) * ld) : Vector512<float>.Zero;
        var x2 = r0 + 2 < live ? Vector512.Load(s + (long)(r0 + 2) * ld) : Vector512<float>.Zero;
        var x3 = r0 + 3 < live ? Vector512.Load(s + (long)(r0 + 3) * ld) : Vector512<float>.Zero;
        var a0 = Avx512F.UnpackLow(x0, x1).AsDouble();
        var a1 = Avx512F.UnpackHigh(x0, x1).AsDouble();
        var a2 = Avx512F.UnpackLow(x2, x3).AsDouble();
        var a3 = Avx512F.UnpackHigh(x2, x3).AsDouble();
        b0 = Avx512F.UnpackLow(a0, a2).AsSingle();
        b1 = Avx512F.UnpackHigh(a0, a2).AsSingle();
        b2 = Avx512F.UnpackLow(a1, a3).AsSingle();
        b3 = Avx512F.UnpackHigh(a1, a3).AsSingle();
    }

    // b[e] of the four row groups → output rows e, 4 + e, 8 + e, 12 + e (at d, stride 4·32).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns4(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3, float* d)
    {
        var c0 = Avx512F.Shuffle4x128(g0, g1, 0x88);
        var c1 = Avx512F.Shuffle4x128(g0, g1, 0xDD);
        var c2 = Avx512F.Shuffle4x128(g2, g3, 0x88);
        var c3 = Avx512F.Shuffle4x128(g2, g3, 0xDD);
        Avx512F.Shuffle4x128(c0, c2, 0x88).Store(d);
        Avx512F.Shuffle4x128(c1, c3, 0x88).Store(d + 4 * Nr);
        Avx512F.Shuffle4x128(c0, c2, 0xDD).Store(d + 8 * Nr);
        Avx512F.Shuffle4x128(c1, c3, 0xDD).Store(d + 12 * Nr);
    }

    // Interleaves mr (a multiple of 4) rows of a: dst[p·mr + r] = alpha·a[r·lda + p], four rows × four
    // columns at a time with SSE transposes (a scalar gather costs a noticeable share of the GEMM at N = 192).
    // Returns how many columns it covered, a multiple of 4; the caller finishes the rest.
    [MethodImpl(Jit.Hot)]
    private static int Transpose4x4Blocks(float* a, int lda, int kc, int mr, float alpha, float* dst)
    {
        var scale = Vector128.Create(alpha);
        int p = 0;
        for (; p + 4 <= kc; p += 4)
        {
            for (int g = 0; g < mr; g += 4)
            {
                float* src = a + (long)g * lda + p;
                var r0 = Sse.LoadVector128(src) * scale;
                var r1 = Sse.LoadVector128(src + lda) * scale;
                var r2 = Sse.LoadVector128(src + 2 * lda) * scale;
                var r3 = Sse.LoadVector128(src + 3 * lda) * scale;
                var t0 = Sse.UnpackLow(r0, r1);
                var t1 = Sse.UnpackLow(r2, r3);
                var t2 = Sse.UnpackHigh(r0, r1);
                var t3 = Sse.UnpackHigh(r2, r3);
                float* d = dst + p * mr + g;
                Sse.Store(d, Sse.MoveLowToHigh(t0, t1));
                Sse.Store(d + mr, Sse.MoveHighToLow(t1, t0));
                Sse.Store(d + 2 * mr, Sse.MoveLowToHigh(t2, t3));
                Sse.Store(d + 3 * mr, Sse.MoveHighToLow(t3, t2));
            }
        }
        return p;
    }
}
