using System.Runtime.CompilerServices;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

public class CpuGemmTests
{
    private const int Guard = 40;
    private const float Sentinel = -12345.5f;

    // Theory data by name: SimdPath is internal and cannot appear in a public test signature.
    public static TheoryData<string> Paths() => new(nameof(SimdPath.Scalar), nameof(SimdPath.Vector128), nameof(SimdPath.Vector256), nameof(SimdPath.Vector512));

    // (m, n, k): edge shapes plus ViT-like ones; the large ones stay under ~1e8 multiply-adds for the reference.
    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (2, 3, 5), (7, 17, 64), (1, 1000, 192), (13, 33, 300), (197, 192, 192),
        (198, 576, 64), (7, 768, 3072), (394, 1000, 5), (25, 100, 768), (30, 48, 40),
    ];

    private static float[] Guarded(int length, float[]? init = null)
    {
        var buffer = new float[length + 2 * Guard];
        buffer.AsSpan().Fill(Sentinel);
        init?.CopyTo(buffer, Guard);
        return buffer;
    }

    private static void Check(SimdPath path, int m, int n, int k, GemmEpilogue epilogue, int threads, int seed)
    {
        var a = Reference.Random(m * k, seed);
        var w = Reference.Random(n * k, seed + 1);
        var bias = Reference.Random(n, seed + 2, 0.5f);
        var c0 = Reference.Random(m * n, seed + 3, 2f);
        bool hasBias = epilogue != GemmEpilogue.None;
        var (expected, magnitude) = Reference.Linear(a, w, hasBias ? bias : null, m, n, k);
        for (int i = 0; i < expected.Length; i++)
        {
            if (epilogue == GemmEpilogue.Accumulate)
            {
                expected[i] += c0[i];
                magnitude[i] += Math.Abs(c0[i]);
            }
            else if (epilogue == GemmEpilogue.BiasGelu)
            {
                // GELU is 1.13-Lipschitz, so the sum's bound carries over with a little slack.
                expected[i] = Reference.Gelu(expected[i]);
                magnitude[i] *= 1.2;
            }
        }

        var packed = PackedWeight.Pack(w, n, k);
        var c = Guarded(m * n, epilogue == GemmEpilogue.Accumulate ? c0 : null);
        CpuGemm.Linear(a, m, packed, bias, c.AsSpan(Guard, m * n), epilogue, threads, path);

        string what = $"{path} {epilogue} m={m} n={n} k={k} threads={threads}";
        Reference.AssertClose(c.AsSpan(Guard, m * n), expected, magnitude, k, what);
        Reference.AssertUntouched(c.AsSpan(0, Guard), Sentinel, what);
        Reference.AssertUntouched(c.AsSpan(Guard + m * n), Sentinel, what);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void LinearMatchesReferenceOnAwkwardShapes(string pathName)
    {
        var path = Enum.Parse<SimdPath>(pathName);
        Assert.SkipUnless(CpuGemm.IsSupported(path), $"{path} is not accelerated here");
        int seed = 100;
        foreach (var (m, n, k) in Shapes)
        {
            Check(path, m, n, k, GemmEpilogue.Bias, threads: 0, seed++);
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void EveryEpilogueMatchesReference(string pathName)
    {
        var path = Enum.Parse<SimdPath>(pathName);
        Assert.SkipUnless(CpuGemm.IsSupported(path), $"{path} is not accelerated here");
        int seed = 200;
        foreach (var epilogue in Enum.GetValues<GemmEpilogue>())
        {
            foreach (var (m, n, k) in new[] { (1, 3, 5), (29, 70, 520), (197, 192, 64) })
            {
                Check(path, m, n, k, epilogue, threads: 2, seed++);
            }
        }
    }

    [Fact]
    public void AccumulateWithoutBiasAddsOnlyTheProduct()
    {
        int m = 9, n = 40, k = 33;
        var a = Reference.Random(m * k, 1);
        var w = Reference.Random(n * k, 2);
        var c0 = Reference.Random(m * n, 3);
        var (expected, magnitude) = Reference.Linear(a, w, null, m, n, k);
        for (int i = 0; i < expected.Length; i++)
        {
            expected[i] += c0[i];
            magnitude[i] += Math.Abs(c0[i]);
        }
        var c = c0.ToArray();
        CpuGemm.Linear(a, m, PackedWeight.Pack(w, n, k), default, c, GemmEpilogue.Accumulate);
        Reference.AssertClose(c, expected, magnitude, k, "accumulate, no bias");
    }

    [Fact]
    public void StridedRowsReadAndWriteOnlyTheirColumns()
    {
        // Class-token rows: 3 images of 5 tokens × 40 channels → head of 70 outputs into rows of stride 75.
        int images = 3, tokens = 5, k = 40, n = 70, ldc = 75;
        var x = Reference.Random(images * tokens * k, 41);
        var w = Reference.Random(n * k, 42);
        var bias = Reference.Random(n, 43);
        var cls = new float[images * k];
        for (int i = 0; i < images; i++)
        {
            x.AsSpan(i * tokens * k, k).CopyTo(cls.AsSpan(i * k));
        }
        var (expected, magnitude) = Reference.Linear(cls, w, bias, images, n, k);
        var c = new float[images * ldc];
        c.AsSpan().Fill(Sentinel);
        CpuGemm.Linear(x, tokens * k, images, PackedWeight.Pack(w, n, k), bias, c, ldc, GemmEpilogue.Bias);
        var packed = new float[images * n];
        for (int i = 0; i < images; i++)
        {
            c.AsSpan(i * ldc, n).CopyTo(packed.AsSpan(i * n));
            Reference.AssertUntouched(c.AsSpan(i * ldc + n, ldc - n), Sentinel, $"row {i} padding");
        }
        Reference.AssertClose(packed, expected, magnitude, k, "strided");
    }

    [Fact]
    public void EmptyInnerDimensionGivesTheBias()
    {
        var bias = Reference.Random(37, 5);
        var c = Reference.Random(3 * 37, 6);
        CpuGemm.Linear(ReadOnlySpan<float>.Empty, 3, PackedWeight.Pack(ReadOnlySpan<float>.Empty, 37, 0), bias, c,
            GemmEpilogue.Bias);
        for (int i = 0; i < c.Length; i++)
        {
            Assert.Equal(bias[i % 37], c[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void RowsDoNotDependOnBatchTilingOrThreads(string pathName)
    {
        var path = Enum.Parse<SimdPath>(pathName);
        Assert.SkipUnless(CpuGemm.IsSupported(path), $"{path} is not accelerated here");
        int n = 200, k = 700;
        var w = PackedWeight.Pack(Reference.Random(n * k, 7), n, k);
        var bias = Reference.Random(n, 8);
        int bigM = 394;
        var a = Reference.Random(bigM * k, 9);
        foreach (var epilogue in new[] { GemmEpilogue.Bias, GemmEpilogue.BiasGelu })
        {
            var full = new float[bigM * n];
            CpuGemm.Linear(a, bigM, w, bias, full, epilogue, 2, path);
            foreach (int threads in new[] { 1, 3 })
            {
                var again = new float[bigM * n];
                CpuGemm.Linear(a, bigM, w, bias, again, epilogue, threads, path);
                Assert.True(full.AsSpan().SequenceEqual(again), $"{path} {epilogue}: threads={threads} differs");
            }
            foreach (int row in new[] { 0, 11, 100, 393 })
            {
                var alone = new float[n];
                CpuGemm.Linear(a.AsSpan(row * k, k), 1, w, bias, alone, epilogue, 1, path);
                Assert.True(alone.AsSpan().SequenceEqual(full.AsSpan(row * n, n)), $"{path} {epilogue}: row {row} alone differs");
            }
            for (int m = 1; m <= 14; m++)
            {
                var part = new float[m * n];
                CpuGemm.Linear(a.AsSpan(50 * k, m * k), m, w, bias, part, epilogue, 2, path);
                Assert.True(part.AsSpan().SequenceEqual(full.AsSpan(50 * n, m * n)), $"{path} {epilogue}: m={m} differs");
            }
        }
    }

    [Fact]
    public void GemmNestedInATeamLoopMatchesTheParallelOne()
    {
        // Inside a loop of the team (one image's op while others run) the GEMM runs on its thread with its own packing;
        // outside, A is packed once up front for every tile. Both must give the same bits, over several K-blocks and a
        // partial last micro-panel.
        int m = 197, n = 200, k = 900;
        var a = Reference.Random(m * k, 21);
        var w = PackedWeight.Pack(Reference.Random(n * k, 22), n, k);
        var bias = Reference.Random(n, 23);
        var direct = new float[m * n];
        CpuGemm.Linear(a, m, w, bias, direct, GemmEpilogue.BiasGelu, 2);
        var nested = new float[2][];
        ThreadTeam.Get(2).For(2, i =>
        {
            nested[i] = new float[m * n];
            CpuGemm.Linear(a, m, w, bias, nested[i], GemmEpilogue.BiasGelu, 2);
        });
        Assert.True(direct.AsSpan().SequenceEqual(nested[0]), "nested call 0 differs");
        Assert.True(direct.AsSpan().SequenceEqual(nested[1]), "nested call 1 differs");
        var sequential = new float[m * n];
        CpuGemm.Linear(a, m, w, bias, sequential, GemmEpilogue.BiasGelu, 1);
        Assert.True(direct.AsSpan().SequenceEqual(sequential), "one thread differs");
    }

    [Fact]
    public void OneImageIsOneRowBlockOnAnyThreadCount()
    {
        // Each row block streams all of W: where W is large, one image's 197 rows must not be split into row blocks when
        // two threads share the GEMM (they split the panels instead), and a batch of 16 must give two threads an even
        // number of blocks.
        foreach (int threads in new[] { 1, 2 })
        {
            var one = CpuGemm.Tiles(197, 2304, 768, threads, SimdPath.Vector512);
            Assert.Equal(1, one.RowBlocks);
            Assert.True(one.Count >= (threads == 1 ? 1 : GemmTiles.TasksPerThread * threads), $"{threads} threads: {one}");
        }
        var batch = CpuGemm.Tiles(16 * 197, 2304, 768, 2, SimdPath.Vector512);
        Assert.Equal(14, batch.RowBlocks);
        Assert.True(batch.RowHeight % GemmKernels.Mr512 == 0 && batch.RowHeight * batch.RowBlocks >= 16 * 197, batch.ToString());
    }

    [Theory]
    [InlineData(197, 192, 192, 2, true, 2)] // ViT-Ti's proj: one row block per thread, 108 + 89 rows
    [InlineData(197, 768, 192, 2, true, 2)] // ViT-Ti's fc1
    [InlineData(197, 384, 1536, 2, true, 2)] // ViT-S's fc2
    [InlineData(197, 768, 768, 3, true, 3)] // ViT-B's proj on three threads
    [InlineData(197, 768, 3072, 2, false, 1)] // ViT-B's fc2: W too large, panels split
    [InlineData(197, 1152, 384, 2, false, 1)] // ViT-S's qkv: N too wide
    [InlineData(47, 192, 192, 2, false, 1)] // less than two micro-panels per thread
    [InlineData(48, 192, 192, 2, true, 2)]
    [InlineData(197, 192, 192, 4, false, 1)] // blocks of 60 would leave 17 rows for the last thread
    [InlineData(197, 192, 192, 16, false, 1)]
    [InlineData(3 * 197, 192, 192, 2, false, 3)] // row blocks enough already: panels split as well
    public void ShortRowsSplitOverThreadsOnlyWhereWeightsAreSmall(int m, int n, int k, int threads, bool byRows, int rowBlocks)
    {
        var tiles = CpuGemm.Tiles(m, n, k, threads, SimdPath.Vector512);
        Assert.Equal(rowBlocks, tiles.RowBlocks);
        if (byRows)
            Assert.Equal(1, tiles.ColBlocks);
        else
            Assert.True(tiles.Count >= Math.Min(tiles.RowBlocks * tiles.Panels, GemmTiles.TasksPerThread * threads), tiles.ToString());
        Assert.True(tiles.RowHeight % GemmKernels.Mr512 == 0 && tiles.RowHeight * tiles.RowBlocks >= m, tiles.ToString());
        Assert.True(tiles.RowHeight * (tiles.RowBlocks - 1) < m, $"an empty row block: {tiles}");
    }

    [Fact]
    public void PanelSplitsAreEvenAndCoverEveryTileOnce()
    {
        // Column blocks differ by at most one panel (ViT-S's 36 qkv panels at batch 1 on two threads: 4 or 5 each), and
        // the tiles cover every (row, panel) exactly once, at the shapes ViT-Ti/S/B/L give and at awkward ones.
        foreach (int m in new[] { 1, 2, 5, 12, 197, 577, 1025, 3152 })
        {
            foreach (int n in new[] { 1, 31, 33, 192, 197, 384, 576, 1000, 1152, 1536, 2304, 3072, 4096 })
            {
                foreach (var (threads, k) in new[] { (1, 192), (2, 192), (2, 3072), (3, 192), (4, 384) })
                {
                    var tiles = CpuGemm.Tiles(m, n, k, threads, SimdPath.Vector512);
                    int panels = (n + 31) / 32;
                    var covered = new int[m, panels];
                    int smallest = int.MaxValue, largest = 0;
                    for (int t = 0; t < tiles.Count; t++)
                    {
                        var (m0, m1, p0, p1) = tiles[t];
                        smallest = Math.Min(smallest, p1 - p0);
                        largest = Math.Max(largest, p1 - p0);
                        for (int i = m0; i < m1; i++)
                            for (int p = p0; p < p1; p++)
                                covered[i, p]++;
                    }
                    string what = $"m={m} n={n} k={k} threads={threads} {tiles}";
                    Assert.True(smallest >= 1 && largest - smallest <= 1, $"{what}: column blocks of {smallest} to {largest} panels");
                    foreach (int count in covered)
                        Assert.True(count == 1, $"{what}: a (row, panel) covered {count} times");
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void TouchingTheNextTileAheadDoesNotChangeBits(int threads)
    {
        // The driver touches the next C tile before each kernel call, and the kernels touch the next weight slice: cache
        // hints only. With and without them, every
        // epilogue, A in place (K = 192, 384, 768) and packed (N > 768, K = 3072: four K-blocks), short last micro-panels
        // and odd N must give the same bits and leave the cells around C alone.
        Assert.SkipUnless(CpuGemm.IsSupported(SimdPath.Vector512), "Vector512 is not accelerated here");
        foreach (int m in new[] { 1, 2, 5, 6, 7, 197, 577, 1025, 3152 })
        {
            foreach (var (n, k) in new[] { (197, 192), (576, 192), (385, 384), (33, 768), (1153, 384), (97, 3072) })
            {
                if ((long)m * n * k > 300_000_000)
                    continue;
                var a = Reference.Random(m * k, 71 + m);
                var w = PackedWeight.Pack(Reference.Random(n * k, 72 + n), n, k);
                var bias = Reference.Random(n, 73);
                var start = Reference.Random(m * n, 74);
                foreach (var epilogue in new[] { GemmEpilogue.Bias, GemmEpilogue.BiasGelu, GemmEpilogue.Accumulate })
                {
                    var plain = start.ToArray();
                    var touched = Guarded(m * n, start);
                    try
                    {
                        CpuGemm.PrefetchC = CpuGemm.PrefetchWeights = false;
                        CpuGemm.Linear(a, m, w, bias, plain, epilogue, threads, SimdPath.Vector512);
                    }
                    finally
                    {
                        CpuGemm.PrefetchC = CpuGemm.PrefetchWeights = true;
                    }
                    CpuGemm.Linear(a, m, w, bias, touched.AsSpan(Guard, m * n), epilogue, threads, SimdPath.Vector512);
                    string what = $"m={m} n={n} k={k} {epilogue} threads={threads}";
                    Assert.True(plain.AsSpan().SequenceEqual(touched.AsSpan(Guard, m * n)), $"{what}: differs with the tiles touched ahead");
                    Reference.AssertUntouched(touched.AsSpan(0, Guard), Sentinel, what);
                    Reference.AssertUntouched(touched.AsSpan(Guard + m * n), Sentinel, what);
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(12)]
    [InlineData(197)]
    [InlineData(240)]
    [InlineData(241)]
    [InlineData(491)]
    public void RowBlocksAndPanelSplitsDoNotChangeBits(int m)
    {
        // Row blocks grow to 240 rows and the threads split their panels; every micro-kernel call also prefetches a share
        // of the next panel slice (the next panel, or the first one at the next K-block). Whatever the split, every row
        // must equal the same row computed alone on one thread: three K-blocks, a narrow last panel, in place and packed.
        int k = 1700;
        foreach (int n in new[] { 200, 1000 })
        {
            var a = Reference.Random(m * k, 41 + n);
            var w = PackedWeight.Pack(Reference.Random(n * k, 42 + n), n, k);
            var bias = Reference.Random(n, 43 + n);
            var start = Reference.Random(m * n, 44 + n);
            foreach (var epilogue in new[] { GemmEpilogue.BiasGelu, GemmEpilogue.Accumulate })
            {
                var rows = new float[m * n];
                for (int r = 0; r < m; r++)
                {
                    start.AsSpan(r * n, n).CopyTo(rows.AsSpan(r * n));
                    CpuGemm.Linear(a.AsSpan(r * k, k), 1, w, bias, rows.AsSpan(r * n, n), epilogue, 1);
                }
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    var c = start.ToArray();
                    CpuGemm.Linear(a, m, w, bias, c, epilogue, threads);
                    Assert.True(rows.AsSpan().SequenceEqual(c), $"m={m} n={n} {epilogue} threads={threads} differs from rows alone");
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void AReadInPlaceAndPackedAgreeBitForBit(int threads)
    {
        // A short N with a short row stride is read in place by the 512-bit kernels; the same rows at a long stride are
        // packed first. A partial last micro-panel, every epilogue (rows short enough to read in place are one K-block).
        int m = 53, n = 200, k = 600, wide = 1000;
        var compact = Reference.Random(m * k, 31);
        var strided = new float[(m - 1) * wide + k];
        for (int r = 0; r < m; r++)
            compact.AsSpan(r * k, k).CopyTo(strided.AsSpan(r * wide));
        var w = PackedWeight.Pack(Reference.Random(n * k, 32), n, k);
        var bias = Reference.Random(n, 33);
        var start = Reference.Random(m * n, 34);
        foreach (var epilogue in new[] { GemmEpilogue.None, GemmEpilogue.Bias, GemmEpilogue.BiasGelu, GemmEpilogue.Accumulate })
        {
            var inPlace = start.ToArray();
            var packed = start.ToArray();
            CpuGemm.Linear(compact, k, m, w, bias, inPlace, n, epilogue, threads);
            CpuGemm.Linear(strided, wide, m, w, bias, packed, n, epilogue, threads);
            Assert.True(inPlace.AsSpan().SequenceEqual(packed), $"{epilogue}, {threads} threads: in place and packed differ");
        }
    }

    [Fact]
    public void AllKernelsAgreeBitForBitWithoutGelu()
    {
        int m = 53, n = 99, k = 600;
        var a = Reference.Random(m * k, 11);
        var w = PackedWeight.Pack(Reference.Random(n * k, 12), n, k);
        var bias = Reference.Random(n, 13);
        var scalar = new float[m * n];
        CpuGemm.Linear(a, m, w, bias, scalar, GemmEpilogue.Bias, 1, SimdPath.Scalar);
        foreach (var path in new[] { SimdPath.Vector128, SimdPath.Vector256, SimdPath.Vector512 })
        {
            if (!CpuGemm.IsSupported(path))
            {
                continue;
            }
            var c = new float[m * n];
            CpuGemm.Linear(a, m, w, bias, c, GemmEpilogue.Bias, 2, path);
            Assert.True(scalar.AsSpan().SequenceEqual(c), $"{path} differs from the scalar kernel");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(197)]
    [InlineData(3 * 197)]
    [InlineData(577)]
    [InlineData(1025)]
    public void ShortLastMicroPanelAgreesWithTheScalarKernel(int m)
    {
        // A last micro-panel of at most half the 512-bit kernel's rows (197 = 16·12 + 5, 591 = 49·12 + 3, 577 = 48·12 + 1,
        // 1025 = 85·12 + 5) runs the half-height kernel; a longer one (m = 7) the full one on a scratch tile. Both
        // must keep every element's FMA chain: bit-identical to the scalar kernel, with A in place (k = 700, and k = 1000
        // as one K-block) or packed in two K-blocks (n = 800, k = 1000), with and without a residual to accumulate onto.
        Assert.SkipUnless(CpuGemm.IsSupported(SimdPath.Vector512), "Vector512 is not accelerated here");
        foreach (var (n, k) in new[] { (96, 700), (96, 1000), (800, 1000) })
        {
            var a = Reference.Random(m * k, 61 + m);
            var w = PackedWeight.Pack(Reference.Random(n * k, 62), n, k);
            var bias = Reference.Random(n, 63);
            var start = Reference.Random(m * n, 64);
            foreach (var epilogue in new[] { GemmEpilogue.Bias, GemmEpilogue.Accumulate })
            {
                var scalar = start.ToArray();
                CpuGemm.Linear(a, m, w, bias, scalar, epilogue, 1, SimdPath.Scalar);
                foreach (int threads in new[] { 1, 2 })
                {
                    var c = Guarded(m * n, start);
                    CpuGemm.Linear(a, m, w, bias, c.AsSpan(Guard, m * n), epilogue, threads, SimdPath.Vector512);
                    string what = $"m={m} n={n} k={k} {epilogue} threads={threads}";
                    Assert.True(scalar.AsSpan().SequenceEqual(c.AsSpan(Guard, m * n)), $"{what}: differs from the scalar kernel");
                    Reference.AssertUntouched(c.AsSpan(0, Guard), Sentinel, what);
                    Reference.AssertUntouched(c.AsSpan(Guard + m * n), Sentinel, what);
                }
            }
        }
    }

    [Fact]
    public void TemporaryWeightSurvivesCollectionsDuringTheCall()
    {
        // The packed weight is a temporary that only the running GEMM refers to; full collections on another
        // thread must not free its pinned panels under the kernels.
        int m = 200, n = 300, k = 300;
        var a = Reference.Random(m * k, 51);
        var w = Reference.Random(n * k, 52);
        var bias = Reference.Random(n, 53);
        var expected = new float[m * n];
        var kept = PackedWeight.Pack(w, n, k);
        CpuGemm.Linear(a, m, kept, bias, expected, GemmEpilogue.Bias, 2);

        int stop = 0;
        var collector = new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                GC.Collect();
                // Pinned garbage lands where a freed weight lived, so a dangling read shows up as NaN.
                GC.AllocateUninitializedArray<float>(n * k + 64, pinned: true).AsSpan().Fill(float.NaN);
            }
        });
        collector.Start();
        try
        {
            // Enough calls for Linear to be re-jitted with optimizations, which shortens the weight's lifetime.
            for (int i = 0; i < 200; i++)
            {
                var c = LinearWithTemporaryWeight(a, m, w, n, k, bias);
                Assert.True(c.AsSpan().SequenceEqual(expected), $"iteration {i} differs");
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            collector.Join();
        }
    }

    // Optimized from the start so this frame does not keep the temporary alive the way tier-0 code would.
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float[] LinearWithTemporaryWeight(float[] a, int m, float[] w, int n, int k, float[] bias)
    {
        var c = new float[m * n];
        CpuGemm.Linear(a, m, PackedWeight.Pack(w, n, k), bias, c, GemmEpilogue.Bias, 2);
        return c;
    }

    [Fact]
    public void RejectsShortBuffers()
    {
        var w = PackedWeight.Pack(new float[6], 2, 3);
        Assert.Throws<ArgumentException>(() => CpuGemm.Linear(new float[5], 2, w, new float[2], new float[4], GemmEpilogue.Bias));
        Assert.Throws<ArgumentException>(() => CpuGemm.Linear(new float[6], 2, w, new float[2], new float[3], GemmEpilogue.Bias));
        Assert.Throws<ArgumentException>(() => CpuGemm.Linear(new float[6], 2, w, new float[1], new float[4], GemmEpilogue.BiasGelu));
        Assert.Throws<ArgumentException>(() => PackedWeight.Pack(new float[5], 2, 3));
    }
}
