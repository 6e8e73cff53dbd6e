using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

/// <summary>Integer micro-kernel family of <see cref="Int8Gemm"/>; internal so tests and TOME_INT8_KERNEL can force each one.</summary>
internal enum Int8Path
{
    Scalar,
    Avx2,
    Avx512BW,
    AvxVnni,
    Avx512Vnni, // generated at run time: Int8JitKernels
}

/// <summary>
/// The int8 Linear: C = dequantize(quantize(A) · Qᵀ) with the epilogue, Q an <see cref="Int8Weight"/>.
/// </summary>
/// <remarks>
/// Activations are quantized per row as the layer runs, asymmetric uint8: the row's range [min(0, min x), max(0, max x)]
/// maps onto 0..255, so one-signed rows (GELU outputs feeding fc2) keep all 256 levels and zero is exact. Unsigned
/// activations times signed weights is also the operand order of VPDPBUSD, the VNNI instruction, so the fast path needs no
/// conversion. The zero point comes out exactly in integers: Σ_k (a − z)·q = Σ_k a·q − z·Σ_k q, the column sums stored with
/// the weight. Each output is then
/// <code>c = fma((float)(Σ a·q − z_r·Σ q), s_r·s_c, bias)   (then GELU, or added to the old c)</code>
/// in that order on every path, so a result depends only on the quantized operands — not on the kernel, the tiling or the
/// thread count. The integer sums are exact; the epilogue is chosen by the hardware, not by the kernel family.
/// </remarks>
internal static unsafe partial class Int8Gemm
{
    private const int Nr = Int8Weight.PanelWidth;

    // A row block (96 rows, a multiple of every kernel's MR) stays in L2 while each panel (16 columns × K bytes) streams
    // through L1 once per block.
    private const int McRows = 96;
    private const long ParallelThreshold = 1L << 18;

    // The calling thread's quantized activations for one call (worker threads only read them).
    [ThreadStatic] private static byte[]? t_quantized;

    /// <summary>The fastest kernel family this machine runs, unless TOME_INT8_KERNEL names another (scalar, avx2, avx512bw, avxvnni, avx512vnni).</summary>
    /// <exception cref="NotSupportedException">TOME_INT8_KERNEL names no family, or one this machine does not run; thrown at
    /// every use, so that a CPU backend's construction fails with that sentence (a type initializer's failure would be a
    /// TypeInitializationException and leave this class unusable for the rest of the process).</exception>
    public static Int8Path BestPath => best.Value;

    private static readonly Lazy<Int8Path> best = new(() => FromEnvironment() ?? DetectBest());

    private static Int8Path DetectBest() =>
        Int8JitKernels.IsAvailable ? Int8Path.Avx512Vnni
        : AvxVnni.IsSupported ? Int8Path.AvxVnni
        : Avx512BW.IsSupported ? Int8Path.Avx512BW
        : Avx2.IsSupported ? Int8Path.Avx2
        : Int8Path.Scalar;

    private static Int8Path? FromEnvironment()
    {
        var name = Environment.GetEnvironmentVariable("TOME_INT8_KERNEL");
        if (string.IsNullOrWhiteSpace(name))
            return null;
        if (!Enum.TryParse<Int8Path>(name.Trim(), ignoreCase: true, out var path) || !Enum.IsDefined(path))
            throw new NotSupportedException($"TOME_INT8_KERNEL '{name}' is not one of {string.Join(", ", Enum.GetNames<Int8Path>()).ToLowerInvariant()}");
        if (!IsSupported(path))
            throw new NotSupportedException($"TOME_INT8_KERNEL '{name}': this machine does not run {path}");
        return path;
    }

    public static bool IsSupported(Int8Path path) => path switch
    {
        Int8Path.AvxVnni => AvxVnni.IsSupported,
        Int8Path.Avx512Vnni => Int8JitKernels.IsAvailable,
        Int8Path.Avx512BW => Avx512BW.IsSupported,
        Int8Path.Avx2 => Avx2.IsSupported,
        _ => true,
    };

    internal static int MicroRows(Int8Path path) => path switch
    {
        Int8Path.AvxVnni => Int8Kernels.MrVnni,
        Int8Path.Avx512Vnni => Int8JitKernels.Mr,
        Int8Path.Avx512BW => Int8Kernels.MrAvx512,
        Int8Path.Avx2 => Int8Kernels.MrAvx2,
        _ => Int8Kernels.MrScalar,
    };

    /// <summary>
    /// C = A·Wᵀ through int8 with the given epilogue (the bias is the weight's). maxThreads: 0 for one per processor.
    /// c must not overlap a.
    /// </summary>
    // a: [m, w.K] with row stride lda; c: [m, w.N] with row stride ldc
    [MethodImpl(Jit.Hot)]
    public static void Linear(ReadOnlySpan<float> a, int lda, int m, Int8Weight w, Span<float> c, int ldc,
        GemmEpilogue epilogue, int maxThreads, Int8Path path)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        if (!IsSupported(path))
            throw new PlatformNotSupportedException($"{path} kernels are not supported on this machine");
        if (lda < w.K || ldc < w.N)
            throw new ArgumentOutOfRangeException(lda < w.K ? nameof(lda) : nameof(ldc), "row stride shorter than the row");
        if (m == 0)
            return;
        if (a.Length < (long)(m - 1) * lda + w.K)
            throw new ArgumentException($"a holds {a.Length} floats, {(long)(m - 1) * lda + w.K} needed", nameof(a));
        if (c.Length < (long)(m - 1) * ldc + w.N)
            throw new ArgumentException($"c holds {c.Length} floats, {(long)(m - 1) * ldc + w.N} needed", nameof(c));

        var activations = new QuantizedRows(m, w.K, path, ref t_quantized);
        fixed (float* pa = a, pc = c)
        {
            float* aPointer = pa;
            ForRows(m, maxThreads, [MethodImpl(Jit.Hot)] (start, end) => activations.Quantize(aPointer, lda, start, end));
            var job = new Job(activations, w, path) { C = pc, Ldc = ldc, Epilogue = epilogue };
            Run(job, maxThreads);
        }
        GC.KeepAlive(w);
    }

    /// <summary>The exact integer sums Σ_k a[r, k]·q[c, k] for already-quantized activations, [m, w.N] (tests of the kernels).</summary>
    internal static int[] IntegerProduct(ReadOnlySpan<byte> quantized, int m, Int8Weight w, Int8Path path, int maxThreads = 1)
    {
        if (quantized.Length < (long)m * w.K)
            throw new ArgumentException($"quantized holds {quantized.Length} values, [{m}, {w.K}] needs {(long)m * w.K}");
        var activations = new QuantizedRows(m, w.K, path, ref t_quantized);
        activations.Load(quantized);
        var result = new int[m * w.N];
        fixed (int* pr = result)
        {
            var job = new Job(activations, w, path) { IntegerOutput = pr };
            Run(job, maxThreads);
        }
        GC.KeepAlive(w);
        return result;
    }

    /// <summary>
    /// How many rows one call of <paramref name="path"/>'s kernel writes, counted on a sentinel-filled buffer far larger
    /// than any kernel's tile (tests: it must equal <see cref="MicroRows"/>, which sizes the tiles and the row padding).
    /// </summary>
    internal static int KernelRows(Int8Path path)
    {
        const int probeRows = 64, sentinel = int.MinValue;
        var w = Int8Weight.Quantize(Enumerable.Repeat(1f, Nr * 4).ToArray(), Nr, 4, default);
        var rows = new QuantizedRows(probeRows, 4, path, ref t_quantized);
        rows.Load(Enumerable.Repeat((byte)1, probeRows * 4).ToArray());
        bool generated = path == Int8Path.Avx512Vnni;
        int stride = generated ? Int8JitKernels.OutStride : Nr;
        var output = new int[probeRows * stride];
        output.AsSpan().Fill(sentinel);
        fixed (int* o = output)
        {
            if (generated)
                Int8JitKernels.Run(1, w.KQuads, rows.Row8(0), rows.Stride, w.Panel(0), 0, o);
            else
                new Job(rows, w, path).KernelRows(o);
        }
        GC.KeepAlive(w);
        int written = 0;
        while (written < probeRows && output[written * stride] != sentinel)
            written++;
        return written;
    }

    private static void ForRows(int m, int maxThreads, Action<int, int> body) =>
        ThreadTeam.Get(maxThreads == 0 ? Environment.ProcessorCount : maxThreads).For(m, 32, body);

    [MethodImpl(Jit.Hot)]
    private static void Run(Job job, int maxThreads)
    {
        int panels = job.W.Panels;
        int threads = maxThreads == 0 ? Environment.ProcessorCount : maxThreads;
        long work = (long)job.M * job.W.N * job.W.K;
        bool parallel = threads > 1 && work >= ParallelThreshold;
        var tiles = GemmTiles.For(job.M, MicroRows(job.Path), McRows, panels, parallel ? threads : 1);
        if (!parallel)
        {
            for (int t = 0; t < tiles.Count; t++)
            {
                var (m0, m1, p0, p1) = tiles[t];
                job.RunTile(m0, m1, p0, p1);
            }
            return;
        }
        ThreadTeam.Get(threads).For(tiles.Count, [MethodImpl(Jit.Hot)] (t) =>
        {
            var (m0, m1, p0, p1) = tiles[t];
            job.RunTile(m0, m1, p0, p1);
        });
    }

    /// <summary>One GEMM's operands; a class so the parallel body can capture it.</summary>
    private sealed class Job(QuantizedRows rows, Int8Weight w, Int8Path path)
    {
        public readonly QuantizedRows A = rows;
        public readonly Int8Weight W = w;
        public readonly Int8Path Path = path;
        public int M => A.M;
        public float* C;
        public int Ldc;
        public GemmEpilogue Epilogue;
        public int* IntegerOutput; // tests: the raw sums [M, N] instead of C

        // Rows [m0, m1) × panels [p0, p1). A panel (two for the generated kernel) stays in L1 while the row block's
        // micro-panels pass it.
        [MethodImpl(Jit.Hot)]
        public void RunTile(int m0, int m1, int p0, int p1)
        {
            // The edge and test tiles hold one micro-panel of the kernel that runs: MicroRows(Path), the rows that kernel
            // writes (KernelRows checks that they agree).
            int mr = MicroRows(Path);
            bool generated = Path == Int8Path.Avx512Vnni;
            float* scratch = stackalloc float[mr * Nr];
            int* raw = stackalloc int[mr * Nr];
            int* sums = stackalloc int[generated ? Int8JitKernels.Mr * Int8JitKernels.OutStride : 0];
            float* noBias = stackalloc float[Nr];
            new Span<float>(noBias, Nr).Clear();
            int kq = W.KQuads;
            long panelStride = (long)kq * Nr * 4;
            fixed (float* scales = W.Scale, bias = W.Bias, rowScale = A.Scale)
            fixed (int* columnSums = W.ColumnSum, rowZero = A.Zero)
            {
                var tile = new Int8Tile
                {
                    Accumulate = Epilogue == GemmEpilogue.Accumulate,
                    Gelu = Epilogue == GemmEpilogue.BiasGelu,
                    Raw = IntegerOutput != null ? raw : null,
                };
                for (int p = p0; p < p1; p += generated ? Int8JitKernels.MaxPanels : 1)
                {
                    int panels = generated ? Math.Min(Int8JitKernels.MaxPanels, p1 - p) : 1;
                    for (int i0 = m0; i0 < m1; i0 += mr)
                    {
                        int rows = Math.Min(mr, m1 - i0);
                        if (generated)
                        {
                            if (IntegerOutput == null)
                                Prefetch(C + (long)i0 * Ldc + p * Nr, Ldc, rows, Math.Min(panels * Nr, W.N - p * Nr));
                            var (ahead, aheadEnd) = NextPanelsShare(p + panels, p1, kq, (i0 - m0) / mr, (m1 - m0 + mr - 1) / mr);
                            Int8JitKernels.Run(panels, kq, A.Row8(i0), A.Stride, W.Panel(p), panelStride, sums, rows, (byte*)ahead, (byte*)aheadEnd);
                            int jf = p * Nr;
                            if (panels == 2 && rows == mr && jf + 2 * Nr <= W.N && IntegerOutput == null)
                            {
                                FullTile512(sums, C + (long)i0 * Ldc + jf, Ldc, rowScale + i0, rowZero + i0, scales + jf,
                                    columnSums + jf, Epilogue == GemmEpilogue.None ? null : bias + jf, tile.Accumulate, tile.Gelu);
                                continue;
                            }
                        }
                        for (int s = 0; s < panels; s++)
                        {
                            int j0 = (p + s) * Nr, cols = Math.Min(Nr, W.N - j0);
                            bool edge = rows < mr || cols < Nr;
                            float* c = C + (long)i0 * Ldc + j0;
                            tile.ColScale = scales + j0;
                            tile.ColSum = columnSums + j0;
                            tile.Bias = Epilogue == GemmEpilogue.None ? noBias : bias + j0;
                            tile.RowScale = rowScale + i0;
                            tile.RowZero = rowZero + i0;
                            tile.C = edge ? scratch : c;
                            tile.Ldc = edge ? Nr : Ldc;
                            if (edge && tile.Accumulate && IntegerOutput == null)
                                Copy(c, Ldc, scratch, Nr, rows, cols);
                            if (generated)
                                Epilogue512(&tile, sums + s * Nr, rows);
                            else
                                Kernel(kq, i0, W.Panel(p), &tile);
                            if (IntegerOutput != null)
                            {
                                for (int r = 0; r < rows; r++)
                                    new ReadOnlySpan<int>(raw + r * Nr, cols).CopyTo(new Span<int>(IntegerOutput + (long)(i0 + r) * W.N + j0, cols));
                                continue;
                            }
                            if (edge)
                                Copy(scratch, Nr, c, Ldc, rows, cols);
                        }
                    }
                }
            }
        }

        // One kernel call on rows 0.. storing its raw sums into raw, [rows][16] (KernelRows).
        public void KernelRows(int* raw)
        {
            var tile = new Int8Tile { Raw = raw };
            Kernel(W.KQuads, 0, W.Panel(0), &tile);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Kernel(int kq, int i0, sbyte* panel, Int8Tile* tile)
        {
            switch (Path)
            {
                case Int8Path.AvxVnni:
                    Int8Kernels.KernelVnni(kq, A.Row8(i0), A.Stride, panel, tile);
                    break;
                case Int8Path.Avx512BW:
                    Int8Kernels.KernelAvx512(kq, A.Row16(i0), A.Stride, panel, tile);
                    break;
                case Int8Path.Avx2:
                    Int8Kernels.KernelAvx2(kq, A.Row16(i0), A.Stride, panel, tile);
                    break;
                default:
                    Int8Kernels.KernelScalar(kq, A.Row8(i0), A.Stride, panel, tile);
                    break;
            }
        }

        // As the fp32 kernels do (CpuGemm.WeightPrefetch), each micro-panel's call touches its share of the panels the tile
        // runs next, one line per k-quad among its VPDPBUSDs: the first micro-panel over a pair of panels reads them from
        // memory faster than a core streams them while the other core does the same.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private (IntPtr From, IntPtr To) NextPanelsShare(int next, int p1, int kq, int microPanel, int microPanels)
        {
            if (next >= p1)
                return default;
            long lines = (long)Math.Min(Int8JitKernels.MaxPanels, p1 - next) * kq; // a k-quad of a panel is one 64-byte line
            long share = (lines + microPanels - 1) / microPanels;
            long first = Math.Min(lines, microPanel * share), last = Math.Min(lines, first + share);
            byte* start = (byte*)W.Panel(next);
            return ((IntPtr)(start + first * 64), (IntPtr)(start + last * 64));
        }

        // The output tile's cache lines, requested before the kernel's K loop so they arrive while it runs: each line of C
        // is touched once per call (read and written by the epilogue), and the next tile's lines lie a row block away,
        // a stride the hardware prefetchers do not follow, so without this every epilogue waited on its misses.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Prefetch(float* c, int ldc, int rows, int cols)
        {
            for (int r = 0; r < rows; r++)
            {
                float* row = c + (long)r * ldc;
                for (int j = 0; j < cols; j += 16)
                    Sse.Prefetch0(row + j);
                Sse.Prefetch0(row + cols - 1);
            }
        }

        // A whole tile of the generated kernel (Mr rows × both panels, all inside C): the same epilogue as Int8Tile.Row, lane
        // for lane, with the columns' vectors loaded once per tile instead of once per row, and GELU run on eight vectors
        // side by side (GemmKernels.GeluTile512, the fp32 kernels' tile GELU; bit for bit the one-vector GELU): one vector's
        // GELU is a chain of some forty dependent operations that the core cannot overlap with the next row's when they
        // come one after the other.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void FullTile512(int* sums, float* c, int ldc, float* rowScale, int* rowZero, float* colScale,
            int* colSum, float* bias, bool accumulate, bool gelu)
        {
            var sum0 = Vector512.Load(colSum);
            var sum1 = Vector512.Load(colSum + Nr);
            var scale0 = Vector512.Load(colScale);
            var scale1 = Vector512.Load(colScale + Nr);
            var bias0 = bias == null ? Vector512<float>.Zero : Vector512.Load(bias);
            var bias1 = bias == null ? Vector512<float>.Zero : Vector512.Load(bias + Nr);
            for (int r = 0; r < Int8JitKernels.Mr; r++)
            {
                var zero = Vector512.Create(rowZero[r]);
                var scale = Vector512.Create(rowScale[r]);
                int* row = sums + r * Int8JitKernels.OutStride;
                float* dst = c + (long)r * ldc;
                var v0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Vector512.Load(row) - zero * sum0), scale * scale0, bias0);
                var v1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Vector512.Load(row + Nr) - zero * sum1), scale * scale1, bias1);
                if (accumulate)
                {
                    v0 += Vector512.Load(dst);
                    v1 += Vector512.Load(dst + Nr);
                }
                Vector512.Store(v0, dst);
                Vector512.Store(v1, dst + Nr);
            }
            if (gelu)
                GemmKernels.GeluTile512(c, ldc, Int8JitKernels.Mr);
        }

        // The generated kernel's sums (row stride OutStride) through the same epilogue; only the tile's real rows.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Epilogue512(Int8Tile* tile, int* sums, int rows)
        {
            for (int r = 0; r < rows; r++)
                tile->Row(r, Vector512.Load(sums + r * Int8JitKernels.OutStride));
        }

        [MethodImpl(Jit.Hot)]
        private static void Copy(float* src, int lds, float* dst, int ldd, int rows, int cols)
        {
            for (int r = 0; r < rows; r++)
                new ReadOnlySpan<float>(src + (long)r * lds, cols).CopyTo(new Span<float>(dst + (long)r * ldd, cols));
        }
    }
}
