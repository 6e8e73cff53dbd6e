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
                int p0 = cols == Nr && Sse.IsSupported ? Transpose4x4Blocks(src + (long)j0 * ld, ld, k, Nr, 1f, panel) : 0;
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
                    for (int p = 0; p < k; p++)
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
