using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

internal static unsafe partial class CpuGemm
{
    /// <summary>One GEMM's operands; a class so the parallel body can capture it.</summary>
    private sealed class Job
    {
        public float* A;
        public int Lda;
        public float Alpha;
        public float* B;
        public float* C;
        public int Ldc;
        public int M, N, K;
        public float* Bias;
        public bool Accumulate, Gelu;
        public SimdPath Path;

        // The 512-bit kernels read whole micro-panels of A where it lies, with no packing pass, where packing would be
        // amortized over few weight panels (N up to 768: all of ViT-Ti, attention's p·v) and the rows are close enough
        // not to crowd a few L1 sets; measured, that saves the packing (up to a tenth of the GEMM at N = 192) while a
        // wide N (ViT-B's qkv and fc1) or a long row stride (ViT-B's fc2) runs faster from a contiguous packed A. Only a
        // partial last micro-panel, and A scaled by alpha, are packed then.
        //
        // Contiguous rows (lda = K) with K up to WholeKMax are read in place too, all of K in one K-block. ViT-S's fc2
        // (K = 1536) packed two 197 × 768 blocks of A and ran them as separate passes over the panels, the second
        // reloading every C tile the first had stored; in place, one kernel call runs a tile's whole chain while the
        // panel's 192 KiB K-slice stays in L2 for all micro-panels (A, 1.2 MB, streams past from L3 once per panel).
        // Measured in a ViT block's sequence of Linears on one Zen 5 core (197 rows, thread CPU time): fc2 ~5% faster,
        // in place with two K-blocks only ~2.5%. ViT-B's fc2 (K = 3072) stays packed: its rows, 12 KiB apart, all fall on
        // one L1 set, and in place it ran 0.79–1.05× as fast, the worst with the other core busy. Where a tile's chain is
        // split is invisible in the result (the running sum passes through C in float32, exactly): no bits change.
        public bool InPlace => Path == SimdPath.Vector512 && Alpha == 1f && N <= InPlaceMaxN
            && (Lda <= InPlaceMaxStride || (WholeKInPlace && Lda == K && K <= WholeKMax));

        // The depth of a K-block: all of K for A read in place (nothing is packed, so no block of A has to fit L2),
        // otherwise Kc.
        public int KBlock => InPlace && WholeKInPlace && K <= WholeKMax ? Math.Max(K, 1) : Kc;

        // A's rows may be read past M up to whole micro-panels (attention's score strips and queries): read in place, a
        // short last micro-panel needs no packing, and one of at most half a micro-panel runs the half kernel, which stores
        // only its six rows (in place where they are all C's, else into the scratch tile).
        public bool PaddedA;

        // C is in cache already (attention's score strips and one image's output rows): touching the next tile ahead only
        // costs instructions there, measured ~1.5% of the attention op.
        public bool CCached;

        // B is a Linear's packed weight, streamed from memory once per row block (not attention's operands, in cache).
        public bool StreamsWeights;

        // All of A packed up front (Run's parallel path), or null: each tile packs its own rows. K-block k0 (depth kc)
        // starts at PackedA + k0·PackedRows; its micro-panel of rows [i, i + MR) at i·kc after that.
        public float* PackedA;
        public int PackedRows;

        // Packing tasks finished (Run's parallel path): tiles start once all are.
        public int PacksDone;

        // The micro-panels of rows [i0, i0 + PackGroup·MR) for the K-block starting at k0, into PackedA.
        [MethodImpl(Jit.Hot)]
        public void PackRows(int k0, int i0)
        {
            int mr = MicroRows(Path);
            int kc = Math.Min(Kc, K - k0);
            int rows = Math.Min(M, i0 + PackGroup * mr) - i0;
            Packing.PackA(A + (long)i0 * Lda + k0, Lda, rows, kc, mr, Alpha, PackedA + (long)k0 * PackedRows + (long)i0 * kc);
        }

        // All of C on the calling thread, one L2-sized row block at a time.
        [MethodImpl(Jit.Hot)]
        public void RunSequential()
        {
            var tiles = Tiles(M, N, K, threads: 1, Path);
            for (int t = 0; t < tiles.Count; t++)
            {
                var (m0, m1, p0, p1) = tiles[t];
                RunTile(m0, m1, p0, p1);
            }
        }

        // Rows [m0, m1) × panels [p0, p1) for all of K.
        [MethodImpl(Jit.Hot)]
        public void RunTile(int m0, int m1, int p0, int p1)
        {
            int mr = MicroRows(Path);
            int rows = m1 - m0;
            int microPanels = (rows + mr - 1) / mr;
            int kBlock = KBlock;
            int kcMax = Math.Min(kBlock, K);
            bool inPlace = InPlace;
            int fullRows = inPlace ? (PaddedA ? rows : rows / mr * mr) : 0;
            int packedPanels = inPlace ? (rows > fullRows ? 1 : 0) : microPanels;
            var aBuf = PackedA == null ? AlignedArray<float>.Ensure(ref t_packA, Math.Max(1, packedPanels * mr * kcMax)) : null;
            float* edge = stackalloc float[GemmKernels.Mr512 * Nr];
            float* edgeBias = stackalloc float[Nr];
            bool prefetch = Sse.IsSupported && PrefetchC && !CCached;
            // Rows of C that start on cache lines (the CPU backend's buffers, with ldc a multiple of 16 floats) put each
            // 32-float tile row in exactly two lines; otherwise a row may straddle three.
            bool twoLines = ((nuint)C & 63) == 0 && (Ldc & 15) == 0;

            int k0 = 0;
            do
            {
                int kc = Math.Min(kBlock, K - k0);
                bool last = k0 + kc == K;
                bool load = k0 > 0 || Accumulate;
                float* bias = last ? Bias : null;
                bool gelu = last && Gelu;
                float* pack;
                if (PackedA == null)
                {
                    pack = aBuf!.Pointer;
                    Packing.PackA(A + (long)(m0 + fullRows) * Lda + k0, Lda, rows - fullRows, kc, mr, Alpha, pack);
                }
                else
                {
                    pack = PackedA + (long)k0 * PackedRows + (long)m0 * kc;
                }

                for (int p = p0; p < p1; p++)
                {
                    int j0 = p * Nr;
                    int cols = Math.Min(Nr, N - j0);
                    bool narrow = cols <= Nr / 2;
                    float* panel = B + (long)j0 * K + (long)k0 * Nr;
                    // The slice this tile runs after this one: the next panel's, or the first panel's in the next K-block.
                    float* nextSlice = !StreamsWeights || !Sse.IsSupported ? null
                        : p + 1 < p1 ? panel + (long)Nr * K : k0 + kc < K ? B + (long)p0 * Nr * K + (long)(k0 + kc) * Nr : null;
                    float* panelBias = bias;
                    if (bias != null)
                    {
                        if (cols == Nr)
                        {
                            panelBias = bias + j0;
                        }
                        else
                        {
                            new Span<float>(edgeBias, Nr).Clear();
                            new ReadOnlySpan<float>(bias + j0, cols).CopyTo(new Span<float>(edgeBias, Nr));
                            panelBias = edgeBias;
                        }
                    }
                    for (int ip = 0; ip < microPanels; ip++)
                    {
                        int i0 = m0 + ip * mr;
                        int rowsHere = Math.Min(mr, m1 - i0);
                        // lda 0: a is a packed micro-panel
                        bool direct = inPlace && (rowsHere == mr || PaddedA);
                        float* a = direct ? A + (long)i0 * Lda + k0 : pack + (long)(inPlace ? 0 : ip) * mr * kc;
                        int lda = direct ? Lda : 0;
                        float* c = C + (long)i0 * Ldc + j0;
                        if (prefetch)
                        {
                            // The next tile: one micro-panel down, or the next panel's first micro-panel.
                            if (ip + 1 < microPanels)
                                PrefetchTile(c + (long)mr * Ldc, Ldc, Math.Min(mr, m1 - i0 - mr), twoLines);
                            else if (p + 1 < p1)
                                PrefetchTile(C + (long)m0 * Ldc + j0 + Nr, Ldc, Math.Min(mr, rows), twoLines);
                        }
                        var ahead = WeightPrefetch(nextSlice, kc, ip, microPanels);
                        if ((rowsHere == mr && (cols == Nr || cols == Nr / 2)) || (direct && rowsHere == mr / 2 && cols == Nr))
                        {
                            Kernel(kc, a, lda, panel, c, Ldc, load, panelBias, gelu, narrow, rowsHere, ahead);
                        }
                        else
                        {
                            // Partial tile: run the full kernel on a scratch tile so no write leaves C's extent.
                            if (load)
                            {
                                Copy(c, Ldc, edge, Nr, rowsHere, cols);
                            }
                            Kernel(kc, a, lda, panel, edge, Nr, load, panelBias, gelu, narrow, rowsHere, ahead);
                            Copy(edge, Nr, c, Ldc, rowsHere, cols);
                        }
                    }
                }
                k0 += kc;
            }
            while (k0 < K);
            GC.KeepAlive(aBuf);
        }

        // narrow: at most the left 16 columns of the panel are live, the rest is padding not worth computing.
        // lda: A read in place with this row stride (512-bit kernels only), or 0 for a packed micro-panel.
        // rows: the live rows of the micro-panel; the 512-bit kernel skips the second half of a panel where they end before it.
        [MethodImpl(Jit.Hot)]
        private void Kernel(int kc, float* a, int lda, float* b, float* c, int ldc, bool load, float* bias, bool gelu, bool narrow,
            int rows, (IntPtr At, int Mask) ahead = default)
        {
            var strided = new GemmKernels.StridedRows(a, lda);
            var packed = new GemmKernels.PackedRows(a);
            switch (Path)
            {
                case SimdPath.Vector512 when lda != 0 && narrow:
                    GemmKernels.Kernel512Narrow(kc, ref strided, b, c, ldc, load, bias, gelu);
                    break;
                case SimdPath.Vector512 when lda != 0 && rows <= GemmKernels.Mr512 / 2:
                    GemmKernels.Kernel512<GemmKernels.StridedRows, GemmKernels.HalfRows>(kc, ref strided, b, c, ldc, load, bias, gelu, (byte*)ahead.At, ahead.Mask);
                    break;
                case SimdPath.Vector512 when lda != 0:
                    GemmKernels.Kernel512<GemmKernels.StridedRows, GemmKernels.AllRows>(kc, ref strided, b, c, ldc, load, bias, gelu, (byte*)ahead.At, ahead.Mask);
                    break;
                case SimdPath.Vector512 when narrow:
                    GemmKernels.Kernel512Narrow(kc, ref packed, b, c, ldc, load, bias, gelu);
                    break;
                case SimdPath.Vector512 when rows <= GemmKernels.Mr512 / 2:
                    GemmKernels.Kernel512<GemmKernels.PackedRows, GemmKernels.HalfRows>(kc, ref packed, b, c, ldc, load, bias, gelu, (byte*)ahead.At, ahead.Mask);
                    break;
                case SimdPath.Vector512:
                    GemmKernels.Kernel512<GemmKernels.PackedRows, GemmKernels.AllRows>(kc, ref packed, b, c, ldc, load, bias, gelu, (byte*)ahead.At, ahead.Mask);
                    break;
                case SimdPath.Vector256:
                    GemmKernels.Kernel256(kc, a, b, c, ldc, load, bias, gelu, narrow);
                    break;
                case SimdPath.Vector128:
                    GemmKernels.Kernel128(kc, a, b, c, ldc, load, bias, gelu, narrow);
                    break;
                default:
                    GemmKernels.KernelScalar(kc, a, b, c, ldc, load, bias, gelu, narrow);
                    break;
            }
        }

        // The kernel ends by storing (or starts by loading) its 12 × 32 tile of C. Where C is not in the caches — a batch's
        // qkv and fc1 outputs (7–10 MB at ViT-Ti batch 16) are far larger than L2 — those twelve rows miss together at the
        // end of a short kernel (K = 192: ~2300 cycles of FMAs) and the next call waits for them. Touching the next tile's
        // lines one call ahead overlaps the misses with this call's arithmetic: measured on one Zen 5 core, ViT-Ti's qkv at
        // batch 16 took 11–16% less thread CPU time, its four Linears together ~7%, ViT-S's 3%; batch 1, where C stays in
        // L2, was unchanged. A 32-float row of a tile spans three cache lines unless its start is 64-byte aligned, so the
        // third touch is only made where it may be a different line.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void PrefetchTile(float* c, int ldc, int rows, bool twoLines)
        {
            for (int r = 0; r < rows; r++)
            {
                float* row = c + (long)r * ldc;
                Sse.Prefetch0(row);
                Sse.Prefetch0(row + 16);
                if (!twoLines)
                    Sse.Prefetch0(row + Nr - 1);
            }
        }

        [MethodImpl(Jit.Hot)]
        private static void Copy(float* src, int lds, float* dst, int ldd, int rows, int cols)
        {
            for (int r = 0; r < rows; r++)
            {
                new ReadOnlySpan<float>(src + (long)r * lds, cols).CopyTo(new Span<float>(dst + (long)r * ldd, cols));
            }
        }
    }
}
