using System.Diagnostics;
using System.Runtime.Intrinsics;
using ToMe.Backends.Cpu;

namespace ToMe.Benchmarking;

/// <summary>One measured CPU kernel at one shape.</summary>
internal sealed record KernelTiming(string Kernel, string Model, int Batch, string Shape, double Milliseconds, double Rate, string Unit, double PercentOfPeak);

/// <summary>
/// The CPU backend's kernels alone at the shapes ViT-Ti/S/B/L produce, next to the machine's measured peaks: the FMA rate
/// (independent vector FMA chains on every worker) for the GEMMs, and for a memory-bound op a copy of the same bytes on the
/// same threads (from the caches when they fit there, as the op's data does).
/// </summary>
internal static class CpuKernelBenchmark
{
    public static readonly (string Name, int Dim)[] Models = [("ViT-Ti", 192), ("ViT-S", 384), ("ViT-B", 768), ("ViT-L", 1024)];

    /// <summary>
    /// Peak float32 FMA rate in GFLOP/s over <paramref name="threads"/> threads (2 flops per lane per FMA); with
    /// <paramref name="threadTime"/>, on the calling thread alone per second of its CPU time (see <see cref="ThreadCpuClock"/>).
    /// </summary>
    public static double MeasureFmaPeak(int threads, bool threadTime = false)
    {
        if (threadTime && threads != 1)
            throw new ArgumentException("thread CPU time measures one thread", nameof(threads));
        double best = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long iterations = 20_000_000;
            double seconds;
            if (threadTime)
            {
                double start = ThreadCpuClock.Seconds();
                FmaLoop(iterations);
                seconds = ThreadCpuClock.Seconds() - start;
            }
            else
            {
                var clock = Stopwatch.StartNew();
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => FmaLoop(iterations));
                seconds = clock.Elapsed.TotalSeconds;
            }
            int lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
            best = Math.Max(best, threads * iterations * 12.0 * lanes * 2 / seconds / 1e9);
        }
        return best;
    }

    // Twelve independent accumulator chains cover the FMA latency × throughput of current cores.
    private static float FmaLoop(long iterations)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            var m = Vector512.Create(0.999f);
            var a = Vector512.Create(1e-3f);
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
                c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
            for (long i = 0; i < iterations; i++)
            {
                c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
                c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
                c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
                c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
                c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
                c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
            }
            return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
        }
        var m2 = Vector256.Create(0.999f);
        var a2 = Vector256.Create(1e-3f);
        Vector256<float> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default, d5 = default,
            d6 = default, d7 = default, d8 = default, d9 = default, d10 = default, d11 = default;
        for (long i = 0; i < iterations; i++)
        {
            d0 = Vector256.FusedMultiplyAdd(d0, m2, a2); d1 = Vector256.FusedMultiplyAdd(d1, m2, a2);
            d2 = Vector256.FusedMultiplyAdd(d2, m2, a2); d3 = Vector256.FusedMultiplyAdd(d3, m2, a2);
            d4 = Vector256.FusedMultiplyAdd(d4, m2, a2); d5 = Vector256.FusedMultiplyAdd(d5, m2, a2);
            d6 = Vector256.FusedMultiplyAdd(d6, m2, a2); d7 = Vector256.FusedMultiplyAdd(d7, m2, a2);
            d8 = Vector256.FusedMultiplyAdd(d8, m2, a2); d9 = Vector256.FusedMultiplyAdd(d9, m2, a2);
            d10 = Vector256.FusedMultiplyAdd(d10, m2, a2); d11 = Vector256.FusedMultiplyAdd(d11, m2, a2);
        }
        return Vector256.Sum(d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + d9 + d10 + d11);
    }

    /// <summary>Copy bandwidth in GB/s (read + write) over a buffer far larger than the caches, on one thread: the memory's rate.</summary>
    public static double MeasureCopyBandwidth()
    {
        var source = new float[32 << 20];
        var destination = new float[source.Length];
        source.AsSpan().Fill(1f);
        double best = double.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            source.AsSpan().CopyTo(destination);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return 2.0 * source.Length * sizeof(float) / best / 1e9;
    }

    // At least this many weight copies and bytes of them per GEMM shape, more than any last-level cache.
    private const int MinWeightCopies = 12;
    private const long WeightBytesStreamed = 128L << 20;

    private static int WeightCopies(int n, int k) =>
        (int)Math.Max(MinWeightCopies, (WeightBytesStreamed + (long)n * k * sizeof(float) - 1) / ((long)n * k * sizeof(float)));

    /// <summary>
    /// Times each kernel of <paramref name="models"/> (names from <see cref="Models"/>) at each batch size; with
    /// <paramref name="cachedWeights"/> every GEMM runs on one weight matrix, which then stays in the caches (the kernel's
    /// ceiling), instead of on distinct copies streamed from memory as in a forward pass. With <paramref name="threadTime"/>
    /// (one thread only) every kernel is timed by the calling thread's CPU time rather than the wall clock.
    /// </summary>
    public static List<KernelTiming> Run(int threads, IReadOnlyList<string> models, IReadOnlyList<int> batches, double fmaPeak, Action<KernelTiming>? progress = null,
        bool cachedWeights = false, bool threadTime = false)
    {
        if (threadTime && threads != 1)
            throw new ArgumentException("thread CPU time measures one thread", nameof(threads));
        double Time(Action action) => CpuKernelBenchmark.Time(action, threadTime);

        var results = new List<KernelTiming>();
        var random = new Random(7);
        foreach (var (model, dim) in Models.Where(m => models.Contains(m.Name, StringComparer.OrdinalIgnoreCase)))
        {
            // One (image, head) attention product pair, as each worker runs it: q·kᵀ then p·v, T = 197, D = 64.
            {
                int t = 197, d = 64;
                var q = Random(random, t * d);
                var s = new float[t * t];
                var o = new float[t * d];
                double ms = Time(() =>
                {
                    CpuGemm.MatMul(q, d, q, d, true, s, t, t, t, d, 0.125f, false);
                    CpuGemm.MatMul(s, t, q, d, false, o, d, t, d, t, 1f, false);
                });
                double gflops = 4.0 * t * t * d / (ms / 1e3) / 1e9;
                Add(new KernelTiming("attention q·kᵀ, p·v (1 head, 1 thread)", model, 1, $"{t}x{t}x{d}", ms, gflops, "GFLOP/s", 100 * gflops / (fmaPeak / threads)));
            }
            foreach (int batch in batches)
            {
                int m = batch * 197;
                foreach (var (name, n, k, epilogue) in new[]
                {
                    ("qkv", 3 * dim, dim, GemmEpilogue.Bias), ("proj", dim, dim, GemmEpilogue.Accumulate),
                    ("fc1+gelu", 4 * dim, dim, GemmEpilogue.BiasGelu), ("fc2", dim, 4 * dim, GemmEpilogue.Accumulate),
                })
                {
                    // A forward pass streams each layer's weights from memory (ViT-B holds 28 MB per layer, 340 MB in
                    // all): timing one weight again and again would measure it from the last-level cache instead.
                    // Distinct copies, each used in turn, cover at least WeightBytesStreamed.
                    var source = Random(random, n * k);
                    var weights = new PackedWeight[cachedWeights ? 1 : WeightCopies(n, k)];
                    for (int i = 0; i < weights.Length; i++)
                        weights[i] = PackedWeight.Pack(source, n, k);
                    var a = Random(random, m * k);
                    var bias = Random(random, n);
                    var c = new float[m * n];
                    int next = 0;
                    double ms = Time(() =>
                    {
                        CpuGemm.Linear(a, m, weights[next], bias, c, epilogue, threads);
                        next = (next + 1) % weights.Length;
                    });
                    double gflops = 2.0 * m * n * k / (ms / 1e3) / 1e9;
                    Add(new KernelTiming($"gemm {name}", model, batch, $"{m}x{n}x{k}", ms, gflops, "GFLOP/s", 100 * gflops / fmaPeak));
                }
                {
                    // The whole attention op (key/value packing, ToMe's key mean, both products, softmax), next to the
                    // products' share: what it costs beyond them is the op's non-matmul time.
                    int t = 197, heads = dim / 64;
                    var backend = new CpuBackend(threads);
                    var qkv = (CpuFloatBuffer)backend.AllocateFloat(m * 3 * dim);
                    Random(random, m * 3 * dim).CopyTo(qkv.Data.AsSpan());
                    var output = backend.AllocateFloat(m * dim);
                    var keyMean = backend.AllocateFloat(m * 64);
                    double ms = Time(() => backend.Attention(qkv, null, batch, t, heads, 64, output, keyMean, null));
                    double gflops = 4.0 * batch * heads * t * t * 64 / (ms / 1e3) / 1e9;
                    Add(new KernelTiming("attention op", model, batch, $"B={batch} T={t} H={heads} D=64", ms, gflops, "GFLOP/s", 100 * gflops / fmaPeak));
                }
                {
                    var x = Random(random, m * dim);
                    var y = new float[m * dim];
                    var g = Random(random, dim);
                    var backend = new CpuBackend(threads);
                    var xb = (CpuFloatBuffer)backend.AllocateFloat(m * dim);
                    x.CopyTo(xb.Data.AsSpan());
                    var yb = (CpuFloatBuffer)backend.AllocateFloat(m * dim);
                    var gb = backend.AllocateFloat(dim);
                    var bb = backend.AllocateFloat(dim);
                    double ms = Time(() => backend.LayerNorm(xb, gb, bb, m, dim, 1e-6f, yb));
                    double gbs = 2.0 * m * dim * sizeof(float) / (ms / 1e3) / 1e9;
                    // Its ceiling is moving its bytes: the same rows copied from its input to its output on the same threads.
                    // A copy over a buffer larger than the caches would not do: one image's rows (150 KB at ViT-Ti) stay in
                    // L2 and run several times faster than memory.
                    double copyMs = Time(() => backend.For(m, 64, (r0, r1) =>
                        xb.Data.AsSpan(r0 * dim, (r1 - r0) * dim).CopyTo(yb.Data.AsSpan(r0 * dim, (r1 - r0) * dim))));
                    Add(new KernelTiming("layer norm", model, batch, $"{m}x{dim}", ms, gbs, "GB/s", 100 * copyMs / ms));
                }
            }
        }
        return results;

        void Add(KernelTiming timing)
        {
            results.Add(timing);
            progress?.Invoke(timing);
        }
    }

    private static float[] Random(Random random, int n)
    {
        var values = new float[n];
        for (int i = 0; i < n; i++)
            values[i] = (float)(random.NextDouble() - 0.5);
        return values;
    }

    /// <summary>
    /// Median time in ms over repeats lasting at least ~0.3 s after one warm-up call. Not the best repeat: on a shared or
    /// virtual machine the best of many runs sits far below the typical one (16–20% below the mean at ViT-B's GEMMs on a
    /// loaded 2-core VM), and a forward pass, whose per-op profile is a mean, never sees it. threadTime: the calling thread's
    /// CPU time instead of the wall clock, which other processes sharing the core do not inflate (on a 2-core VM under a
    /// load of 6–10, a ViT-B fc2 at 197 rows timed 4.6–9 ms by the wall clock, 4.7–4.8 ms by thread CPU time).
    /// </summary>
    private static double Time(Action action, bool threadTime)
    {
        action();
        var seconds = new List<double>();
        double total = 0;
        for (int i = 0; i < 200 && (i < 5 || total < 0.3); i++)
        {
            double s;
            if (threadTime)
            {
                double start = ThreadCpuClock.Seconds();
                action();
                s = ThreadCpuClock.Seconds() - start;
            }
            else
            {
                var clock = Stopwatch.StartNew();
                action();
                s = clock.Elapsed.TotalSeconds;
            }
            seconds.Add(s);
            total += s;
        }
        seconds.Sort();
        return seconds[seconds.Count / 2] * 1e3;
    }
}
