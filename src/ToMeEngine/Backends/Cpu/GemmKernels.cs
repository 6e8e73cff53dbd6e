using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Micro-kernels: each computes an MR × 32 tile of C (one packed weight panel) over a K-block.
/// </summary>
/// <remarks>
/// Fully unrolled so the JIT keeps every accumulator in a register (Kernel512: 24 zmm accumulators, two panel
/// loads and one broadcast per k; it runs at the machine's FMA peak with operands in L1). Every output element
/// is a single FMA chain over k in increasing order, starting from 0 or from C, so all kernels (the scalar one
/// included) produce bit-identical sums.
/// </remarks>
internal static unsafe partial class GemmKernels
{
    public const int Mr512 = 12;
    public const int Mr256 = 6;
    public const int Mr128 = 6;
    public const int MrScalar = 4;
    private const int Nr = PackedWeight.PanelWidth;

    // a: Mr512 rows of A from k = 0 (a packed micro-panel [kc, Mr512], or rows in place); b: packed panel slice [kc, 32];
    // c: [TCount.Rows, 32] tile with row stride ldc; bias: [32] or null (added after the sum); gelu applies after bias.
    // TCount: all Mr512 rows, or only the first half of them (a short last micro-panel: 197 rows are 16 full micro-panels
    // and 5 rows, which the half kernel computes at half the cost). The count is a constant of each instantiation, so the
    // half kernel holds 12 accumulators and the rows it skips generate no code.
    // rows comes by reference and is copied here: passed by value, the 40-byte StridedRows was built on the caller's stack
    // and copied into the argument area by 16-byte moves, each reading two 8-byte stores just made, a store-forwarding
    // stall on every call (2–4% of the attention op, whose kernels run 64 or 197 deep).
    // prefetch: null, or where to start touching lines of weights a later call reads, one 64-byte line every
    // prefetchMask + 1 (a power of two) k steps (see CpuGemm.WeightPrefetch); a cache hint only.
    [MethodImpl(Jit.Hot)]
    public static void Kernel512<TRows, TCount>(int kc, ref TRows rows, float* b, float* c, int ldc, bool load, float* bias, bool gelu,
        byte* prefetch = null, int prefetchMask = 0)
        where TRows : struct, IMicroRows
        where TCount : struct, IRowCount
    {
        var a = rows;
        bool all = TCount.Rows == Mr512;
        Vector512<float> c00, c01;
        Vector512<float> c10, c11;
        Vector512<float> c20, c21;
        Vector512<float> c30, c31;
        Vector512<float> c40, c41;
        Vector512<float> c50, c51;
        Vector512<float> c60, c61;
        Vector512<float> c70, c71;
        Vector512<float> c80, c81;
        Vector512<float> c90, c91;
        Vector512<float> c100, c101;
        Vector512<float> c110, c111;
        if (load)
        {
            c00 = Vector512.Load(c + 0 * ldc); c01 = Vector512.Load(c + 0 * ldc + 16);
            c10 = Vector512.Load(c + 1 * ldc); c11 = Vector512.Load(c + 1 * ldc + 16);
            c20 = Vector512.Load(c + 2 * ldc); c21 = Vector512.Load(c + 2 * ldc + 16);
            c30 = Vector512.Load(c + 3 * ldc); c31 = Vector512.Load(c + 3 * ldc + 16);
            c40 = Vector512.Load(c + 4 * ldc); c41 = Vector512.Load(c + 4 * ldc + 16);
            c50 = Vector512.Load(c + 5 * ldc); c51 = Vector512.Load(c + 5 * ldc + 16);
            if (all)
            {
                c60 = Vector512.Load(c + 6 * ldc); c61 = Vector512.Load(c + 6 * ldc + 16);
                c70 = Vector512.Load(c + 7 * ldc); c71 = Vector512.Load(c + 7 * ldc + 16);
                c80 = Vector512.Load(c + 8 * ldc); c81 = Vector512.Load(c + 8 * ldc + 16);
                c90 = Vector512.Load(c + 9 * ldc); c91 = Vector512.Load(c + 9 * ldc + 16);
                c100 = Vector512.Load(c + 10 * ldc); c101 = Vector512.Load(c + 10 * ldc + 16);
                c110 = Vector512.Load(c + 11 * ldc); c111 = Vector512.Load(c + 11 * ldc + 16);
            }
            else
            {
                c60 = Vector512<float>.Zero; c61 = Vector512<float>.Zero;
                c70 = Vector512<float>.Zero; c71 = Vector512<float>.Zero;
                c80 = Vector512<float>.Zero; c81 = Vector512<float>.Zero;
                c90 = Vector512<float>.Zero; c91 = Vector512<float>.Zero;
                c100 = Vector512<float>.Zero; c101 = Vector512<float>.Zero;
                c110 = Vector512<float>.Zero; c111 = Vector512<float>.Zero;
            }
        }
        else
        {
            c00 = Vector512<float>.Zero; c01 = Vector512<float>.Zero;
            c10 = Vector512<float>.Zero; c11 = Vector512<float>.Zero;
            c20 = Vector512<float>.Zero; c21 = Vector512<float>.Zero;
            c30 = Vector512<float>.Zero; c31 = Vector512<float>.Zero;
            c40 = Vector512<float>.Zero; c41 = Vector512<float>.Zero;
            c50 = Vector512<float>.Zero; c51 = Vector512<float>.Zero;
            c60 = Vector512<float>.Zero; c61 = Vector512<float>.Zero;
            c70 = Vector512<float>.Zero; c71 = Vector512<float>.Zero;
            c80 = Vector512<float>.Zero; c81 = Vector512<float>.Zero;
            c90 = Vector512<float>.Zero; c91 = Vector512<float>.Zero;
            c100 = Vector512<float>.Zero; c101 = Vector512<float>.Zero;
            c110 = Vector512<float>.Zero; c111 = Vector512<float>.Zero;
        }
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            { var av = Vector512.Create(a.At(0)); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01); }
            { var av = Vector512.Create(a.At(1)); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11); }
            { var av = Vector512.Create(a.At(2)); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21); }
            { var av = Vector512.Create(a.At(3)); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31); }
            { var av = Vector512.Create(a.At(4)); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41); }
            { var av = Vector512.Create(a.At(5)); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51); }
            if (all)
            {
                { var av = Vector512.Create(a.At(6)); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61); }
                { var av = Vector512.Create(a.At(7)); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71); }
                { var av = Vector512.Create(a.At(8)); c80 = Vector512.FusedMultiplyAdd(av, b0, c80); c81 = Vector512.FusedMultiplyAdd(av, b1, c81); }
                { var av = Vector512.Create(a.At(9)); c90 = Vector512.FusedMultiplyAdd(av, b0, c90); c91 = Vector512.FusedMultiplyAdd(av, b1, c91); }
                { var av = Vector512.Create(a.At(10)); c100 = Vector512.FusedMultiplyAdd(av, b0, c100); c101 = Vector512.FusedMultiplyAdd(av, b1, c101); }
                { var av = Vector512.Create(a.At(11)); c110 = Vector512.FusedMultiplyAdd(av, b0, c110); c111 = Vector512.FusedMultiplyAdd(av, b1, c111); }
            }
            a.Next();
            b += Nr;
            if (Sse.IsSupported && prefetch != null && (p & prefetchMask) == 0)
            {
                Sse.Prefetch0(prefetch);
                prefetch += 64;
            }
        }
        if (bias != null)
        {
            var bb0 = Vector512.Load(bias);
            var bb1 = Vector512.Load(bias + 16);
            c00 += bb0; c01 += bb1;
            c10 += bb0; c11 += bb1;
            c20 += bb0; c21 += bb1;
            c30 += bb0; c31 += bb1;
            c40 += bb0; c41 += bb1;
            c50 += bb0; c51 += bb1;
            if (all)
            {
                c60 += bb0; c61 += bb1;
                c70 += bb0; c71 += bb1;
                c80 += bb0; c81 += bb1;
                c90 += bb0; c91 += bb1;
                c100 += bb0; c101 += bb1;
                c110 += bb0; c111 += bb1;
            }
        }
        Vector512.Store(c00, c + 0 * ldc); Vector512.Store(c01, c + 0 * ldc + 16);
        Vector512.Store(c10, c + 1 * ldc); Vector512.Store(c11, c + 1 * ldc + 16);
        Vector512.Store(c20, c + 2 * ldc); Vector512.Store(c21, c + 2 * ldc + 16);
        Vector512.Store(c30, c + 3 * ldc); Vector512.Store(c31, c + 3 * ldc + 16);
        Vector512.Store(c40, c + 4 * ldc); Vector512.Store(c41, c + 4 * ldc + 16);
        Vector512.Store(c50, c + 5 * ldc); Vector512.Store(c51, c + 5 * ldc + 16);
        if (all)
        {
            Vector512.Store(c60, c + 6 * ldc); Vector512.Store(c61, c + 6 * ldc + 16);
            Vector512.Store(c70, c + 7 * ldc); Vector512.Store(c71, c + 7 * ldc + 16);
            Vector512.Store(c80, c + 8 * ldc); Vector512.Store(c81, c + 8 * ldc + 16);
            Vector512.Store(c90, c + 9 * ldc); Vector512.Store(c91, c + 9 * ldc + 16);
            Vector512.Store(c100, c + 10 * ldc); Vector512.Store(c101, c + 10 * ldc + 16);
            Vector512.Store(c110, c + 11 * ldc); Vector512.Store(c111, c + 11 * ldc + 16);
        }
        if (gelu)
        {
            GeluTile512(c, ldc, TCount.Rows);
        }
    }

    /// <summary>How many rows of a micro-panel a kernel computes, as a constant of its instantiation.</summary>
    internal interface IRowCount
    {
        static abstract int Rows { get; }
    }

    internal struct AllRows : IRowCount
    {
        public static int Rows => Mr512;
    }

    internal struct HalfRows : IRowCount
    {
        public static int Rows => Mr512 / 2;
    }

    // GELU runs over the freshly stored tile (still in L1) rather than on the accumulators, so its many
    // temporaries do not force the kernel's 24 accumulators out of registers and the kernel stays small. Compiled
    // fully optimized at once like the kernels: its tier-0 form calls out for every vector op and made fc1 + GELU
    // cost nearly twice fc2.
    // Where AVX-512 code can be generated, the tile goes to GeluJitKernel (bit for bit the same, fewer instructions).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void GeluTile512(float* c, int ldc, int rows)
    {
        if (GeluJitKernel.IsAvailable)
        {
            GeluJitKernel.Run(c, ldc, rows);
            return;
        }
        GeluTile512Compiled(c, ldc, rows);
    }

    /// <summary>The compiled GELU of a rows × 32 tile (the fallback of <see cref="GeluJitKernel"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void GeluTile512Compiled(float* c, int ldc, int rows)
    {
        int r = 0;
        for (; r + 4 <= rows; r += 4)
            VectorMath.GeluRows4x32(c + r * ldc, ldc);
        for (; r < rows; r++)
        {
            float* row = c + r * ldc;
            Vector512.Store(VectorMath.Gelu(Vector512.Load(row)), row);
            Vector512.Store(VectorMath.Gelu(Vector512.Load(row + 16)), row + 16);
        }
    }

    // Kernel512 for a panel with at most 16 live columns (the last panel of N = 197, the 16-wide tail of D = 80):
    // only the left half of the panel is computed, which halves the wasted work there.
    [MethodImpl(Jit.Hot)]
    public static void Kernel512Narrow<TRows>(int kc, ref TRows rows, float* b, float* c, int ldc, bool load, float* bias, bool gelu)
        where TRows : struct, IMicroRows
    {
        var a = rows;
        Vector512<float> c0;
        Vector512<float> c1;
        Vector512<float> c2;
        Vector512<float> c3;
        Vector512<float> c4;
        Vector512<float> c5;
        Vector512<float> c6;
        Vector512<float> c7;
        Vector512<float> c8;
        Vector512<float> c9;
        Vector512<float> c10;
        Vector512<float> c11;
        if (load)
        {
            c0 = Vector512.Load(c + 0 * ldc);
            c1 = Vector512.Load(c + 1 * ldc);
            c2 = Vector512.Load(c + 2 * ldc);
            c3 = Vector512.Load(c + 3 * ldc);
            c4 = Vector512.Load(c + 4 * ldc);
            c5 = Vector512.Load(c + 5 * ldc);
            c6 = Vector512.Load(c + 6 * ldc);
            c7 = Vector512.Load(c + 7 * ldc);
            c8 = Vector512.Load(c + 8 * ldc);
            c9 = Vector512.Load(c + 9 * ldc);
            c10 = Vector512.Load(c + 10 * ldc);
            c11 = Vector512.Load(c + 11 * ldc);
        }
        else
        {
            c0 = Vector512<float>.Zero;
            c1 = Vector512<float>.Zero;
            c2 = Vector512<float>.Zero;
            c3 = Vector512<float>.Zero;
            c4 = Vector512<float>.Zero;
            c5 = Vector512<float>.Zero;
            c6 = Vector512<float>.Zero;
            c7 = Vector512<float>.Zero;
            c8 = Vector512<float>.Zero;
            c9 = Vector512<float>.Zero;
            c10 = Vector512<float>.Zero;
            c11 = Vector512<float>.Zero;
        }
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(0)), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(1)), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(2)), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(3)), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(4)), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(5)), b0, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(6)), b0, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(7)), b0, c7);
            c8 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(8)), b0, c8);
            c9 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(9)), b0, c9);
            c10 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(10)), b0, c10);
            c11 = Vector512.FusedMultiplyAdd(Vector512.Create(a.At(11)), b0, c11);
            a.Next();
            b += Nr;
        }
        if (bias != null)
        {
            var bb0 = Vector512.Load(bias);
            c0 += bb0;
            c1 += bb0;
            c2 += bb0;
            c3 += bb0;
            c4 += bb0;
            c5 += bb0;
            c6 += bb0;
            c7 += bb0;
            c8 += bb0;
            c9 += bb0;
            c10 += bb0;
            c11 += bb0;
        }
        Vector512.Store(c0, c + 0 * ldc);
        Vector512.Store(c1, c + 1 * ldc);
        Vector512.Store(c2, c + 2 * ldc);
        Vector512.Store(c3, c + 3 * ldc);
        Vector512.Store(c4, c + 4 * ldc);
        Vector512.Store(c5, c + 5 * ldc);
        Vector512.Store(c6, c + 6 * ldc);
        Vector512.Store(c7, c + 7 * ldc);
        Vector512.Store(c8, c + 8 * ldc);
        Vector512.Store(c9, c + 9 * ldc);
        Vector512.Store(c10, c + 10 * ldc);
        Vector512.Store(c11, c + 11 * ldc);
        if (gelu)
        {
            for (int r = 0; r < Mr512; r++)
            {
                Vector512.Store(VectorMath.Gelu(Vector512.Load(c + r * ldc)), c + r * ldc);
            }
        }
    }

    /// <summary>Where a micro-kernel reads its Mr512 rows of A at the current k.</summary>
    internal interface IMicroRows
    {
        float At(int row);

        void Next();
    }

    // A packed micro-panel: the rows of one k side by side.
    internal struct PackedRows(float* a) : IMicroRows
    {
        private float* a = a;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly float At(int row) => a[row];

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next() => a += Mr512;
    }

    // A in place. Four row pointers three rows apart plus the row stride reach the twelve rows in single addressing
    // modes ([p], [p + lda], [p + 2·lda]), so the kernel still has a broadcast load per row and k and no packing pass.
    internal struct StridedRows(float* a, int lda) : IMicroRows
    {
        private readonly nint ld = (nint)lda * sizeof(float);
        private byte* r0 = (byte*)a;
        private byte* r3 = (byte*)(a + 3L * lda);
        private byte* r6 = (byte*)(a + 6L * lda);
        private byte* r9 = (byte*)(a + 9L * lda);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly float At(int row) => row switch
        {
            0 => *(float*)r0,
            1 => *(float*)(r0 + ld),
            2 => *(float*)(r0 + 2 * ld),
            3 => *(float*)r3,
            4 => *(float*)(r3 + ld),
            5 => *(float*)(r3 + 2 * ld),
            6 => *(float*)r6,
            7 => *(float*)(r6 + ld),
            8 => *(float*)(r6 + 2 * ld),
            9 => *(float*)r9,
            10 => *(float*)(r9 + ld),
            _ => *(float*)(r9 + 2 * ld),
        };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next()
        {
            r0 += sizeof(float);
            r3 += sizeof(float);
            r6 += sizeof(float);
            r9 += sizeof(float);
        }
    }
}
