using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

/// <summary>What the packed GEMM does with each output element after the A·Wᵀ sum.</summary>
internal enum GemmEpilogue
{
    /// <summary>C = A·Wᵀ.</summary>
    None,

    /// <summary>C = A·Wᵀ + bias.</summary>
    Bias,

    /// <summary>C = GELU(A·Wᵀ + bias), exact erf GELU.</summary>
    BiasGelu,

    /// <summary>C += A·Wᵀ (+ bias when one is given): the residual add. The sum starts from the old C.</summary>
    Accumulate,
}

/// <summary>Micro-kernel family; internal so tests can force each one.</summary>
internal enum SimdPath
{
    Scalar,
    Vector128,
    Vector256,
    Vector512,
}

/// <summary>
/// Float32 SGEMM for the CPU backend: a packed, cache-blocked, multi-threaded Linear
/// (<see cref="Linear(ReadOnlySpan{float}, int, PackedWeight, ReadOnlySpan{float}, Span{float}, GemmEpilogue, int)"/>)
/// and a single-threaded strided product for attention (MatMul).
/// </summary>
/// <remarks>
/// Determinism: every output element is one FMA chain over k = 0..K−1 in order, started from 0 (or from C when
/// accumulating), with bias and GELU applied once at the end. K-blocks hand the running sum over through C in
/// float32, which is exact, so the value of an element does not depend on M, on the tiling, on the thread count
/// or on the micro-kernel width. The only path-dependent step is the exp inside GELU.
/// </remarks>
internal static unsafe partial class CpuGemm
{
    // Blocking: an A block of up to 240 rows × Kc (at most 720 KiB) stays in L2 while every weight panel's Kc-deep
    // slice (96 KiB) streams past it, each slice reused by the block's micro-kernel calls. Kc = 768 keeps ViT's
    // K = 192, 384 and 768 in one K-block (each C tile is stored once, never reloaded between K-blocks) and splits a
    // packed K of 3072 in four. On Zen 5 (48 KiB L1, 1 MiB L2), ViT-B at batch 1 on one thread took ~5% less thread CPU
    // time than with Kc = 384, whose 48 KiB slice was meant to stay in L1; Kc = 1024 and 1536 measured as 768, 192
    // and 256 no better than 384. On Zen 4, McRows from 96 to 288 measured within noise of each other.
    // A task owns a row block across all of N where there are enough row blocks, so A is packed exactly once;
    // only short M splits N as well (or its rows, where W is small: see Tiles). A read in place has no packed block to
    // keep in L2 and takes all of K up to WholeKMax as one K-block instead (see Job.KBlock).
    private const int Kc = 768;
    private const int McRows = 192;
    private const int Nr = PackedWeight.PanelWidth;

    // Below this many multiply-adds a parallel dispatch costs more than it saves.
    private const long ParallelThreshold = 1L << 18;

    [ThreadStatic] private static AlignedArray<float>? t_packA;
    [ThreadStatic] private static AlignedArray<float>? t_packB;
    [ThreadStatic] private static AlignedArray<float>? t_packShared;

    // Limits of reading A in place (see Job.InPlace).
    private const int InPlaceMaxN = 768;
    private const int InPlaceMaxStride = 768;
    private const int WholeKMax = 1536;

    // Micro-panels of A per task of the parallel packing pass.
    private const int PackGroup = 4;

    /// <summary>The widest micro-kernel this machine runs natively.</summary>
    public static SimdPath BestPath { get; } =
        Vector512.IsHardwareAccelerated ? SimdPath.Vector512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? SimdPath.Vector256
        : IsSupported(SimdPath.Vector128) ? SimdPath.Vector128
        : SimdPath.Scalar;

    /// <summary>Whether <paramref name="path"/> can run here (the tests skip the ones that cannot).</summary>
    public static bool IsSupported(SimdPath path) => path switch
    {
        SimdPath.Vector512 => Vector512.IsHardwareAccelerated,
        SimdPath.Vector256 => Vector256.IsHardwareAccelerated && Fma.IsSupported,
        // Without hardware FMA, Vector128.FusedMultiplyAdd is emulated and slower than the scalar path.
        SimdPath.Vector128 => Vector128.IsHardwareAccelerated && (Fma.IsSupported || AdvSimd.IsSupported),
        _ => true,
    };

    /// <summary>
    /// C = A·Wᵀ with the given epilogue, W a packed timm Linear weight. maxThreads: 0 for one per processor,
    /// 1 to run on the calling thread. c must not overlap a.
    /// </summary>
    // a: [m, w.K] row-major; c: [m, w.N] row-major; bias: [w.N] (Bias/BiasGelu), [w.N] or empty (Accumulate), ignored (None)
    [MethodImpl(Jit.Hot)]
    public static void Linear(ReadOnlySpan<float> a, int m, PackedWeight w, ReadOnlySpan<float> bias, Span<float> c,
        GemmEpilogue epilogue, int maxThreads = 0) =>
        Linear(a, m, w, bias, c, epilogue, maxThreads, BestPath);

    /// <summary>Strided form, e.g. for the class-token rows of a [batch, tokens, C] activation.</summary>
    // a: [m, w.K] with row stride lda; c: [m, w.N] with row stride ldc; bias as above
    [MethodImpl(Jit.Hot)]
    public static void Linear(ReadOnlySpan<float> a, int lda, int m, PackedWeight w, ReadOnlySpan<float> bias,
        Span<float> c, int ldc, GemmEpilogue epilogue, int maxThreads = 0) =>
        Linear(a, lda, m, w, bias, c, ldc, epilogue, maxThreads, BestPath);

    [MethodImpl(Jit.Hot)]
    internal static void Linear(ReadOnlySpan<float> a, int m, PackedWeight w, ReadOnlySpan<float> bias, Span<float> c,
        GemmEpilogue epilogue, int maxThreads, SimdPath path)
    {
        ArgumentNullException.ThrowIfNull(w);
        Linear(a, w.K, m, w, bias, c, w.N, epilogue, maxThreads, path);
    }

    [MethodImpl(Jit.Hot)]
    internal static void Linear(ReadOnlySpan<float> a, int lda, int m, PackedWeight w, ReadOnlySpan<float> bias,
        Span<float> c, int ldc, GemmEpilogue epilogue, int maxThreads, SimdPath path)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        if (!IsSupported(path))
        {
            throw new PlatformNotSupportedException($"{path} kernels are not accelerated on this machine");
        }
        int n = w.N, k = w.K;
        CheckStride(lda, k, nameof(lda));
        CheckStride(ldc, n, nameof(ldc));
        if (m > 0)
        {
            CheckLength(a.Length, (long)(m - 1) * lda + k, nameof(a));
            CheckLength(c.Length, (long)(m - 1) * ldc + n, nameof(c));
        }
        bool needBias = epilogue is GemmEpilogue.Bias or GemmEpilogue.BiasGelu
            || (epilogue == GemmEpilogue.Accumulate && !bias.IsEmpty);
        if (needBias)
        {
            CheckLength(bias.Length, n, nameof(bias));
        }
        if (m == 0)
        {
            return;
        }

        fixed (float* pa = a, pc = c, pbias = bias)
        {
            var job = new Job
            {
                A = pa, Lda = lda, Alpha = 1f, B = w.Data, C = pc, Ldc = ldc, M = m, N = n, K = k,
                Bias = needBias ? pbias : null,
                Accumulate = epilogue == GemmEpilogue.Accumulate,
                Gelu = epilogue == GemmEpilogue.BiasGelu,
                Path = path,
                StreamsWeights = PrefetchWeights,
            };
            Run(job, maxThreads);
        }
        // The job only holds raw pointers into w's pinned buffer: without this, w (often a temporary in the
        // caller) may be collected while the kernels still read its panels.
        GC.KeepAlive(w);
    }

    // Whether the driver touches the next C tile ahead of the kernel (see Job.PrefetchTile); a switch so tests and
    // benchmarks can compare both forms.
    internal static bool PrefetchC = true;

    // Whether a Linear's kernel calls touch the weight slice the tile runs next (see WeightPrefetch); a switch so
    // tests and benchmarks can compare both forms.
    internal static bool PrefetchWeights = true;

    // Whether contiguous rows of A with K up to WholeKMax are read in place as one K-block (see Job.InPlace and
    // Job.KBlock); a switch so tests and benchmarks can compare both forms.
    internal static bool WholeKInPlace = true;

    [MethodImpl(Jit.Hot)]
    private static void Run(Job job, int maxThreads)
    {
        int panels = (job.N + Nr - 1) / Nr;
        int threads = maxThreads == 0 ? Environment.ProcessorCount : maxThreads;
        long work = (long)job.M * job.N * Math.Max(job.K, 1);
        // A team already running a loop (this GEMM is one image's op among several running at once) would run the tiles
        // on this thread alone: tiles split for several threads would only pack the same rows of A again.
        var team = threads > 1 && work >= ParallelThreshold ? ThreadTeam.Get(threads) : null;
        if (team is not { Idle: true })
        {
            job.RunSequential();
            return;
        }

        // Where tiles of one row block run on different threads, unless the kernels read A in place, A is packed once for
        // all of them, in parallel, before they start (packed per tile, a short M's A was packed once per column block, a
        // quarter of the GEMM's time at N = 192). Packing and tiles are one loop, the packing tasks first: the team
        // claims indices in order, so a thread that claims a tile waits only for packing tasks already running on other
        // threads, and one fork-join per GEMM is saved (at batch 1 the two loops' barriers were a visible share of
        // ViT-B's qkv, fc1 and fc2). Where every row block is one tile, each tile packs its own rows where it runs.
        var tiles = Tiles(job.M, job.N, job.K, threads, job.Path);
        int mr = MicroRows(job.Path);
        AlignedArray<float>? packed = null;
        int packTasks = 0, groups = 1;
        if (!job.InPlace && tiles.ColBlocks > 1)
        {
            int microPanels = (job.M + mr - 1) / mr;
            int kBlocks = Math.Max(1, (job.K + Kc - 1) / Kc);
            groups = (microPanels + PackGroup - 1) / PackGroup;
            packTasks = kBlocks * groups;
            packed = AlignedArray<float>.Ensure(ref t_packShared, Math.Max(1, microPanels * mr * job.K));
            job.PackedA = packed.Pointer;
            job.PackedRows = microPanels * mr;
        }
        job.PacksDone = 0;
        team.For(packTasks + tiles.Count, [MethodImpl(Jit.Hot)] (t) =>
        {
            if (t < packTasks)
            {
                try
                {
                    job.PackRows(t / groups * Kc, t % groups * PackGroup * mr);
                }
                finally
                {
                    Interlocked.Increment(ref job.PacksDone);
                }
                return;
            }
            if (Volatile.Read(ref job.PacksDone) < packTasks)
            {
                var spin = new SpinWait();
                while (Volatile.Read(ref job.PacksDone) < packTasks)
                    spin.SpinOnce(sleep1Threshold: -1);
            }
            var (m0, m1, p0, p1) = tiles[t - packTasks];
            job.RunTile(m0, m1, p0, p1);
        });
        GC.KeepAlive(packed);
    }

    /// <summary>
    /// How an m × n Linear (depth k) splits into tiles for <paramref name="threads"/> threads. A row block holds McRows
    /// rows, or up to a quarter more rather than leave a short tail: every block streams all of the weights, so where they
    /// are large one image's 197 rows are one block on any thread count (not 108 + 89 rows that read W twice) and the
    /// threads split its panels, and a batch of 16 is 14 blocks that two threads share evenly (not 17).
    /// Where W is small and narrow (see RowSplitMaxN), a short M is split over the threads instead: split by panels, each
    /// thread would read every row of A, half of them written by the other core (the previous op split the same way),
    /// and write half of every row of C, which the next op reads from both cores.
    /// </summary>
    internal static GemmTiles Tiles(int m, int n, int k, int threads, SimdPath path)
    {
        int mr = MicroRows(path);
        bool splitRows = n <= RowSplitMaxN && (long)n * k <= RowSplitMaxWeights;
        return GemmTiles.For(m, mr, Math.Max(mr, McRows * 5 / 4 / mr * mr), (n + Nr - 1) / Nr, threads, splitRows);
    }

    // One image's rows split over the threads when W has at most this many columns and elements. Measured on two Zen 5
    // cores at batch 1 (per-op times in the forward, interleaved): ViT-Ti's four Linears (W ≤ 576 KiB) 0–25% faster,
    // the forward ~20%; ViT-S's proj and fc2 (N = 384) 10–15% faster, but its qkv and fc1 (N = 1152, 1536) 3–6% slower;
    // ViT-B's proj (768 × 768) 3–7% faster, fc2 (768 × 3072, 9 MiB streamed from memory by both threads) ~1% slower,
    // qkv and fc1 3–8% slower. A wide N makes the per-thread weight stream the larger cost; a narrow one the cross-core A.
    private const int RowSplitMaxN = 768;
    private const long RowSplitMaxWeights = 768 * 768;

    internal static int MicroRows(SimdPath path) => path switch
    {
        SimdPath.Vector512 => GemmKernels.Mr512,
        SimdPath.Vector256 => GemmKernels.Mr256,
        SimdPath.Vector128 => GemmKernels.Mr128,
        _ => GemmKernels.MrScalar,
    };

    private static void CheckLength(long actual, long needed, string name)
    {
        if (actual < needed)
        {
            throw new ArgumentException($"{name} holds {actual} floats, {needed} needed", name);
        }
    }

    private static void CheckStride(int stride, int minimum, string name)
    {
        if (stride < minimum)
        {
            throw new ArgumentOutOfRangeException(name, stride, $"row stride must be at least {minimum}");
        }
    }

    // Which lines of the next weight slice micro-panel ip of microPanels touches: from At, one per Mask + 1 k steps.
    // A weight slice (kc × 32 floats, 96 KiB at kc = 768) is read from memory by the first micro-panel that uses it and
    // from L2 by the others. That first pass wants 128 bytes per k step, more than one core streams from memory while
    // the other core does the same, so it stalls. So each micro-panel's call touches its share of the next slice's
    // lines, one every few k steps among its FMAs (the same lines touched in a burst before each call made ViT-B 7%
    // slower). Measured on 2 Zen 5 cores, one image per thread, batch 16: ViT-B and ViT-S forwards 5–7% faster,
    // ViT-Ti 3–6%; each ViT-B Linear alone with both cores streaming weights 4–8% faster. Where the micro-panels are
    // too few for one line per 8 k steps (the short rows of late ToMe layers), the lines come denser, up to one per
    // k step.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (IntPtr At, int Mask) WeightPrefetch(float* nextSlice, int kc, int ip, int microPanels)
    {
        if (nextSlice == null || kc <= 0)
            return default;
        int lines = kc * Nr / 16;
        int share = (lines + microPanels - 1) / microPanels;
        int every = 1 << BitOperations.Log2((uint)Math.Clamp(kc / share, 1, 8));
        long first = (long)ip * ((kc + every - 1) / every);
        return first < lines ? ((IntPtr)((byte*)nextSlice + first * 64), every - 1) : default;
    }
}
