using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ToMe.Backends.Cpu;

// The kernels for machines without AVX-512 (Vector256: AVX2/FMA; Vector128: NEON or SSE) and the portable scalar
// kernel: the same contract and the same per-element FMA chain as Kernel512, so every width gives the same bits.
internal static unsafe partial class GemmKernels
{
    // Same contract as Kernel512 with Mr256 rows; the 32-wide panel is processed as two 16-wide halves.
    // narrow: only the left 16 columns are live (see Kernel512Narrow).
    [MethodImpl(Jit.Hot)]
    public static void Kernel256(int kc, float* a, float* b, float* c, int ldc, bool load, float* bias, bool gelu, bool narrow)
    {
        Half256(kc, a, b, c, ldc, load, bias, gelu);
        if (!narrow)
        {
            Half256(kc, a, b + 16, c + 16, ldc, load, bias == null ? null : bias + 16, gelu);
        }
    }

    [MethodImpl(Jit.Hot)]
    private static void Half256(int kc, float* a, float* b, float* c, int ldc, bool load, float* bias, bool gelu)
    {
        Vector256<float> c00, c01;
        Vector256<float> c10, c11;
        Vector256<float> c20, c21;
        Vector256<float> c30, c31;
        Vector256<float> c40, c41;
        Vector256<float> c50, c51;
        if (load)
        {
            c00 = Vector256.Load(c + 0 * ldc); c01 = Vector256.Load(c + 0 * ldc + 8);
            c10 = Vector256.Load(c + 1 * ldc); c11 = Vector256.Load(c + 1 * ldc + 8);
            c20 = Vector256.Load(c + 2 * ldc); c21 = Vector256.Load(c + 2 * ldc + 8);
            c30 = Vector256.Load(c + 3 * ldc); c31 = Vector256.Load(c + 3 * ldc + 8);
            c40 = Vector256.Load(c + 4 * ldc); c41 = Vector256.Load(c + 4 * ldc + 8);
            c50 = Vector256.Load(c + 5 * ldc); c51 = Vector256.Load(c + 5 * ldc + 8);
        }
        else
        {
            c00 = Vector256<float>.Zero; c01 = Vector256<float>.Zero;
            c10 = Vector256<float>.Zero; c11 = Vector256<float>.Zero;
            c20 = Vector256<float>.Zero; c21 = Vector256<float>.Zero;
            c30 = Vector256<float>.Zero; c31 = Vector256<float>.Zero;
            c40 = Vector256<float>.Zero; c41 = Vector256<float>.Zero;
            c50 = Vector256<float>.Zero; c51 = Vector256<float>.Zero;
        }
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            { var av = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01); }
            { var av = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11); }
            { var av = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21); }
            { var av = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31); }
            { var av = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41); }
            { var av = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51); }
            a += 6;
            b += Nr;
        }
        if (bias != null)
        {
            var bb0 = Vector256.Load(bias);
            var bb1 = Vector256.Load(bias + 8);
            c00 += bb0; c01 += bb1;
            c10 += bb0; c11 += bb1;
            c20 += bb0; c21 += bb1;
            c30 += bb0; c31 += bb1;
            c40 += bb0; c41 += bb1;
            c50 += bb0; c51 += bb1;
        }
        Vector256.Store(c00, c + 0 * ldc); Vector256.Store(c01, c + 0 * ldc + 8);
        Vector256.Store(c10, c + 1 * ldc); Vector256.Store(c11, c + 1 * ldc + 8);
        Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
        Vector256.Store(c30, c + 3 * ldc); Vector256.Store(c31, c + 3 * ldc + 8);
        Vector256.Store(c40, c + 4 * ldc); Vector256.Store(c41, c + 4 * ldc + 8);
        Vector256.Store(c50, c + 5 * ldc); Vector256.Store(c51, c + 5 * ldc + 8);
        if (gelu)
        {
            GeluTile256(c, ldc, Mr256);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void GeluTile256(float* c, int ldc, int rows)
    {
        for (int r = 0; r < rows; r++)
        {
            float* row = c + r * ldc;
            Vector256.Store(VectorMath.Gelu(Vector256.Load(row)), row);
            Vector256.Store(VectorMath.Gelu(Vector256.Load(row + 8)), row + 8);
        }
    }

    // Vector128 (NEON on Arm64, or SSE/FMA): Mr128 rows × 16 columns per half, 24 accumulators, which fits
    // Arm64's 32 vector registers. GELU falls back to the scalar function over the stored tile.
    [MethodImpl(Jit.Hot)]
    public static void Kernel128(int kc, float* a, float* b, float* c, int ldc, bool load, float* bias, bool gelu, bool narrow)
    {
        Half128(kc, a, b, c, ldc, load, bias);
        if (!narrow)
        {
            Half128(kc, a, b + 16, c + 16, ldc, load, bias == null ? null : bias + 16);
        }
        if (gelu)
        {
            int width = narrow ? Nr / 2 : Nr;
            for (int r = 0; r < Mr128; r++)
            {
                for (int j = 0; j < width; j++)
                {
                    c[r * ldc + j] = VectorMath.Gelu(c[r * ldc + j]);
                }
            }
        }
    }

    [MethodImpl(Jit.Hot)]
    private static void Half128(int kc, float* a, float* b, float* c, int ldc, bool load, float* bias)
    {
        Vector128<float> c00, c01, c02, c03;
        Vector128<float> c10, c11, c12, c13;
        Vector128<float> c20, c21, c22, c23;
        Vector128<float> c30, c31, c32, c33;
        Vector128<float> c40, c41, c42, c43;
        Vector128<float> c50, c51, c52, c53;
        if (load)
        {
            c00 = Vector128.Load(c + 0 * ldc); c01 = Vector128.Load(c + 0 * ldc + 4);
            c02 = Vector128.Load(c + 0 * ldc + 8); c03 = Vector128.Load(c + 0 * ldc + 12);
            c10 = Vector128.Load(c + 1 * ldc); c11 = Vector128.Load(c + 1 * ldc + 4);
            c12 = Vector128.Load(c + 1 * ldc + 8); c13 = Vector128.Load(c + 1 * ldc + 12);
            c20 = Vector128.Load(c + 2 * ldc); c21 = Vector128.Load(c + 2 * ldc + 4);
            c22 = Vector128.Load(c + 2 * ldc + 8); c23 = Vector128.Load(c + 2 * ldc + 12);
            c30 = Vector128.Load(c + 3 * ldc); c31 = Vector128.Load(c + 3 * ldc + 4);
            c32 = Vector128.Load(c + 3 * ldc + 8); c33 = Vector128.Load(c + 3 * ldc + 12);
            c40 = Vector128.Load(c + 4 * ldc); c41 = Vector128.Load(c + 4 * ldc + 4);
            c42 = Vector128.Load(c + 4 * ldc + 8); c43 = Vector128.Load(c + 4 * ldc + 12);
            c50 = Vector128.Load(c + 5 * ldc); c51 = Vector128.Load(c + 5 * ldc + 4);
            c52 = Vector128.Load(c + 5 * ldc + 8); c53 = Vector128.Load(c + 5 * ldc + 12);
        }
        else
        {
            c00 = c01 = c02 = c03 = Vector128<float>.Zero;
            c10 = c11 = c12 = c13 = Vector128<float>.Zero;
            c20 = c21 = c22 = c23 = Vector128<float>.Zero;
            c30 = c31 = c32 = c33 = Vector128<float>.Zero;
            c40 = c41 = c42 = c43 = Vector128<float>.Zero;
            c50 = c51 = c52 = c53 = Vector128<float>.Zero;
        }
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector128.Load(b);
            var b1 = Vector128.Load(b + 4);
            var b2 = Vector128.Load(b + 8);
            var b3 = Vector128.Load(b + 12);
            {
                var av = Vector128.Create(a[0]);
                c00 = Vector128.FusedMultiplyAdd(av, b0, c00); c01 = Vector128.FusedMultiplyAdd(av, b1, c01);
                c02 = Vector128.FusedMultiplyAdd(av, b2, c02); c03 = Vector128.FusedMultiplyAdd(av, b3, c03);
            }
            {
                var av = Vector128.Create(a[1]);
                c10 = Vector128.FusedMultiplyAdd(av, b0, c10); c11 = Vector128.FusedMultiplyAdd(av, b1, c11);
                c12 = Vector128.FusedMultiplyAdd(av, b2, c12); c13 = Vector128.FusedMultiplyAdd(av, b3, c13);
            }
            {
                var av = Vector128.Create(a[2]);
                c20 = Vector128.FusedMultiplyAdd(av, b0, c20); c21 = Vector128.FusedMultiplyAdd(av, b1, c21);
                c22 = Vector128.FusedMultiplyAdd(av, b2, c22); c23 = Vector128.FusedMultiplyAdd(av, b3, c23);
            }
            {
                var av = Vector128.Create(a[3]);
                c30 = Vector128.FusedMultiplyAdd(av, b0, c30); c31 = Vector128.FusedMultiplyAdd(av, b1, c31);
                c32 = Vector128.FusedMultiplyAdd(av, b2, c32); c33 = Vector128.FusedMultiplyAdd(av, b3, c33);
            }
            {
                var av = Vector128.Create(a[4]);
                c40 = Vector128.FusedMultiplyAdd(av, b0, c40); c41 = Vector128.FusedMultiplyAdd(av, b1, c41);
                c42 = Vector128.FusedMultiplyAdd(av, b2, c42); c43 = Vector128.FusedMultiplyAdd(av, b3, c43);
            }
            {
                var av = Vector128.Create(a[5]);
                c50 = Vector128.FusedMultiplyAdd(av, b0, c50); c51 = Vector128.FusedMultiplyAdd(av, b1, c51);
                c52 = Vector128.FusedMultiplyAdd(av, b2, c52); c53 = Vector128.FusedMultiplyAdd(av, b3, c53);
            }
            a += Mr128;
            b += Nr;
        }
        if (bias != null)
        {
            var bb0 = Vector128.Load(bias);
            var bb1 = Vector128.Load(bias + 4);
            var bb2 = Vector128.Load(bias + 8);
            var bb3 = Vector128.Load(bias + 12);
            c00 += bb0; c01 += bb1; c02 += bb2; c03 += bb3;
            c10 += bb0; c11 += bb1; c12 += bb2; c13 += bb3;
            c20 += bb0; c21 += bb1; c22 += bb2; c23 += bb3;
            c30 += bb0; c31 += bb1; c32 += bb2; c33 += bb3;
            c40 += bb0; c41 += bb1; c42 += bb2; c43 += bb3;
            c50 += bb0; c51 += bb1; c52 += bb2; c53 += bb3;
        }
        Vector128.Store(c00, c + 0 * ldc); Vector128.Store(c01, c + 0 * ldc + 4);
        Vector128.Store(c02, c + 0 * ldc + 8); Vector128.Store(c03, c + 0 * ldc + 12);
        Vector128.Store(c10, c + 1 * ldc); Vector128.Store(c11, c + 1 * ldc + 4);
        Vector128.Store(c12, c + 1 * ldc + 8); Vector128.Store(c13, c + 1 * ldc + 12);
        Vector128.Store(c20, c + 2 * ldc); Vector128.Store(c21, c + 2 * ldc + 4);
        Vector128.Store(c22, c + 2 * ldc + 8); Vector128.Store(c23, c + 2 * ldc + 12);
        Vector128.Store(c30, c + 3 * ldc); Vector128.Store(c31, c + 3 * ldc + 4);
        Vector128.Store(c32, c + 3 * ldc + 8); Vector128.Store(c33, c + 3 * ldc + 12);
        Vector128.Store(c40, c + 4 * ldc); Vector128.Store(c41, c + 4 * ldc + 4);
        Vector128.Store(c42, c + 4 * ldc + 8); Vector128.Store(c43, c + 4 * ldc + 12);
        Vector128.Store(c50, c + 5 * ldc); Vector128.Store(c51, c + 5 * ldc + 4);
        Vector128.Store(c52, c + 5 * ldc + 8); Vector128.Store(c53, c + 5 * ldc + 12);
    }

    // Portable fallback with the same per-element FMA chain, so it matches the SIMD kernels bit for bit
    // (up to the exp inside GELU). Eight register accumulators per pass over k; the loop order differs from the
    // SIMD kernels but each element still sees the same sequence of fused multiply-adds.
    [MethodImpl(Jit.Hot)]
    public static void KernelScalar(int kc, float* a, float* b, float* c, int ldc, bool load, float* bias, bool gelu, bool narrow)
    {
        int width = narrow ? Nr / 2 : Nr;
        for (int r = 0; r < MrScalar; r++)
        {
            float* cr = c + r * ldc;
            for (int j = 0; j < width; j += 8)
            {
                float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, s4 = 0f, s5 = 0f, s6 = 0f, s7 = 0f;
                if (load)
                {
                    s0 = cr[j]; s1 = cr[j + 1]; s2 = cr[j + 2]; s3 = cr[j + 3];
                    s4 = cr[j + 4]; s5 = cr[j + 5]; s6 = cr[j + 6]; s7 = cr[j + 7];
                }
                float* ap = a + r;
                float* bp = b + j;
                for (int p = 0; p < kc; p++)
                {
                    float av = *ap;
                    s0 = MathF.FusedMultiplyAdd(av, bp[0], s0); s1 = MathF.FusedMultiplyAdd(av, bp[1], s1);
                    s2 = MathF.FusedMultiplyAdd(av, bp[2], s2); s3 = MathF.FusedMultiplyAdd(av, bp[3], s3);
                    s4 = MathF.FusedMultiplyAdd(av, bp[4], s4); s5 = MathF.FusedMultiplyAdd(av, bp[5], s5);
                    s6 = MathF.FusedMultiplyAdd(av, bp[6], s6); s7 = MathF.FusedMultiplyAdd(av, bp[7], s7);
                    ap += MrScalar;
                    bp += Nr;
                }
                cr[j] = s0; cr[j + 1] = s1; cr[j + 2] = s2; cr[j + 3] = s3;
                cr[j + 4] = s4; cr[j + 5] = s5; cr[j + 6] = s6; cr[j + 7] = s7;
            }
            for (int j = 0; j < width; j++)
            {
                float v = cr[j];
                if (bias != null)
                {
                    v += bias[j];
                }
                cr[j] = gelu ? VectorMath.Gelu(v) : v;
            }
        }
    }
}
