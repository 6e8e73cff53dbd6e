using ToMe.Backends;
using ToMe.Merging;

namespace ToMe.Benchmarking;

/// <summary>The peaks a device's kernels are measured against, from the same run.</summary>
/// <param name="GemmSize">N of the N×N×N product.</param>
/// <param name="GemmTflops">The backend's own Linear (cuBLAS at the engine's precision on CUDA) on that product.</param>
/// <param name="CopyBytes">The size of the copy.</param>
/// <param name="CopyGigabytesPerSecond">A device-to-device copy, bytes read + written per second.</param>
internal sealed record DevicePeaks(int GemmSize, double GemmTflops, long CopyBytes, double CopyGigabytesPerSecond);

/// <summary>
/// Every op of a backend alone, through <see cref="IBackend"/>, at the shapes a ViT-S/B/L forward gives it (224 px, 197
/// tokens, head dim 64, ToMe r = 16 where an op merges), timed by the backend's clock (CUDA events on a GPU). The products
/// (Linear, patch embedding, attention, matching) are rated in TFLOP/s against the GEMM peak, the rest in GB/s against the
/// copy peak. Inputs are seeded random data run through the ops in forward order, so each op sees realistic values.
/// </summary>
internal static class DeviceKernelBenchmark
{
    public static readonly (string Name, int Dim, int Heads)[] Models = [("ViT-S", 384, 6), ("ViT-B", 768, 12), ("ViT-L", 1024, 16)];

    private const int Tokens = 197, HeadDim = 64, Image = 224, Patch = 16, Grid = 14, R = 16;

    public static DevicePeaks MeasurePeaks(IBackend backend, int gemmSize, long copyBytes, double budgetMilliseconds)
    {
        var clock = HostKernelClock.For(backend);
        var host = RandomFloats((long)gemmSize * gemmSize, 5);
        using var weights = backend.PrepareLinear(host, gemmSize, gemmSize, host.AsSpan(0, gemmSize));
        using var x = backend.AllocateFloat((long)gemmSize * gemmSize);
        using var y = backend.AllocateFloat((long)gemmSize * gemmSize);
        backend.Upload(host, x);
        double ms = KernelTimer.Best(clock, () => backend.Linear(x, weights, gemmSize, LinearEpilogue.Bias, y), budgetMilliseconds);
        return new DevicePeaks(gemmSize, 2.0 * gemmSize * gemmSize * gemmSize / (ms / 1e3) / 1e12, copyBytes, clock.CopyBandwidth(copyBytes));
    }

    public static List<KernelTiming> Run(IBackend backend, IReadOnlyList<string> models, IReadOnlyList<int> batches, DevicePeaks peaks,
                                         double budgetMilliseconds, Action<KernelTiming>? progress = null)
    {
        var clock = HostKernelClock.For(backend);
        var results = new List<KernelTiming>();
        foreach (var (model, c, heads) in Models.Where(m => models.Contains(m.Name, StringComparer.OrdinalIgnoreCase)))
            foreach (int batch in batches)
                RunModel(backend, clock, model, c, heads, batch, peaks, budgetMilliseconds, t =>
                {
                    results.Add(t);
                    progress?.Invoke(t);
                });
        return results;
    }

    private static void RunModel(IBackend backend, IKernelClock clock, string model, int c, int heads, int batch, DevicePeaks peaks,
                                 double budget, Action<KernelTiming> add)
    {
        int t = Tokens, rows = batch * t, hidden = 4 * c, ta = (t + 1) / 2, tb = t / 2, k = 3 * Patch * Patch, merged = t - R;
        var owned = new List<IDisposable>();
        var host = RandomFloats(Math.Max(Math.Max((long)rows * hidden, (long)hidden * c), (long)batch * 3 * Image * Image), 7);
        DeviceBuffer Floats(long n, float? fill = null)
        {
            var buffer = Own(backend.AllocateFloat(n));
            backend.Upload(fill is float v ? Enumerable.Repeat(v, (int)n).ToArray() : host.AsSpan(0, (int)n), buffer);
            return buffer;
        }
        DeviceBuffer Ints(int[] values)
        {
            var buffer = Own(backend.AllocateInt(values.Length));
            backend.Upload(values, buffer);
            return buffer;
        }
        ILinearWeights Linear(int outFeatures, int inFeatures) =>
            Own(backend.PrepareLinear(host.AsSpan(0, outFeatures * inFeatures), outFeatures, inFeatures, host.AsSpan(0, outFeatures)));
        T Own<T>(T resource) where T : IDisposable
        {
            owned.Add(resource);
            return resource;
        }
        void Time(string kernel, string shape, Action work, double amount, bool flops)
        {
            double ms = KernelTimer.Best(clock, work, budget);
            double rate = amount / (ms / 1e3) / (flops ? 1e12 : 1e9);
            add(new KernelTiming(kernel, model, batch, shape, ms, rate, flops ? "TFLOP/s" : "GB/s",
                100 * rate / (flops ? peaks.GemmTflops : peaks.CopyGigabytesPerSecond)));
        }

        try
        {
            var images = Floats((long)batch * 3 * Image * Image);
            var prefix = Floats(c);
            var pos = Floats((long)t * c);
            var gamma = Floats(c, 1f);
            var beta = Floats(c, 0f);
            var x = Floats((long)rows * c);
            var h = Floats((long)rows * c);
            var qkv = Floats((long)rows * 3 * c);
            var mlp = Floats((long)rows * hidden);
            var metric = Floats((long)rows * HeadDim);
            var size = Floats(rows, 1f);
            var cls = Floats(rows);
            var score = Floats(rows);
            var best = Floats((long)batch * ta);
            var bestIndex = Ints(new int[batch * ta]);
            var order = Ints(new int[batch * ta]);
            var groups = Ints(Enumerable.Range(0, rows).Select(i => i % t).ToArray());
            var xNext = Floats((long)rows * c);
            var sizeNext = Floats(rows);
            var groupsNext = Ints(new int[rows]);
            var dest = Ints(new int[rows]);
            var counts = Ints(new int[batch]);
            var pooled = Floats((long)batch * c);
            var roles = new int[rows];
            for (int b = 0; b < batch; b++)
                TokenRoles.Kth(t, 2, roles.AsSpan(b * t, t));
            var role = Ints(roles);
            var patch = Linear(c, k);
            var qkvWeights = Linear(3 * c, c);
            var proj = Linear(c, c);
            var fc1 = Linear(hidden, c);
            var fc2 = Linear(c, hidden);
            const int f = sizeof(float);

            Time("patch_embed", $"{batch * Grid * Grid}x{c}x{k}", () => backend.PatchEmbed(images, prefix, pos, patch, batch, Image, Patch, 1, x),
                2.0 * batch * Grid * Grid * k * c, flops: true);
            Time("layer_norm", $"{rows}x{c}", () => backend.LayerNorm(x, gamma, beta, rows, c, 1e-6f, h), 2.0 * rows * c * f, flops: false);
            Time("linear qkv", $"{rows}x{3 * c}x{c}", () => backend.Linear(h, qkvWeights, rows, LinearEpilogue.Bias, qkv), 2.0 * rows * 3 * c * c, flops: true);
            Time("attention", $"B={batch} T={t} H={heads} D={HeadDim}", () => backend.Attention(qkv, size, batch, t, heads, HeadDim, h, metric, cls),
                4.0 * batch * heads * t * t * HeadDim, flops: true);
            Time("linear proj + residual", $"{rows}x{c}x{c}", () => backend.Linear(h, proj, rows, LinearEpilogue.BiasAccumulate, x), 2.0 * rows * c * c, flops: true);
            Time("bipartite_match", $"B={batch} {ta}x{tb} D={HeadDim}", () => backend.BipartiteMatch(metric, batch, t, HeadDim, 1, best, bestIndex),
                2.0 * batch * ta * tb * HeadDim, flops: true);
            Time("select_top_r", $"B={batch} ta={ta} r={R}", () => backend.SelectTopR(best, batch, ta, R, true, order), 2.0 * batch * ta * f, flops: false);
            Time("merge", $"B={batch} T={t}->{merged} C={c}", () => backend.Merge(x, size, groups, order, bestIndex, null, batch, t, c, t, R, 1, xNext, sizeNext, groupsNext),
                ((double)rows + batch * merged) * c * f, flops: false);
            Time("class_importance", $"B={batch} T={t} H={heads}", () => backend.ClassImportance(qkv, cls, batch, t, heads, HeadDim, score),
                (double)rows * (c + 2) * f, flops: false);
            Time("linear fc1 + GELU", $"{rows}x{hidden}x{c}", () => backend.Linear(h, fc1, rows, LinearEpilogue.BiasGelu, mlp), 2.0 * rows * hidden * c, flops: true);
            Time("linear fc2 + residual", $"{rows}x{c}x{hidden}", () => backend.Linear(mlp, fc2, rows, LinearEpilogue.BiasAccumulate, x), 2.0 * rows * c * hidden, flops: true);
            Time("grid_components", $"B={batch} {Grid}x{Grid} D={HeadDim}", () => backend.GridComponents(metric, batch, t, HeadDim, 1, Grid, Grid, 0.9f, dest, counts),
                (double)rows * HeadDim * f, flops: false);
            Time("assign_to_most_similar", $"B={batch} kth k=2 {t / 2}x{t - t / 2} D={HeadDim}", () => backend.AssignToMostSimilar(metric, role, batch, t, HeadDim, 0, dest),
                2.0 * batch * (t / 2) * (t - t / 2) * HeadDim, flops: true);
            Time("merge_assigned", $"B={batch} T={t}->{t / 2} C={c}", () => backend.MergeAssigned(x, size, groups, dest, batch, t, c, t, t / 2, xNext, sizeNext, groupsNext),
                ((double)rows + batch * (t / 2)) * c * f, flops: false);
            Time("gather_prefix", $"B={batch} C={c}", () => backend.GatherPrefix(x, batch, t, c, 1, pooled), 2.0 * batch * c * f, flops: false);
            Time("weighted_mean_pool", $"B={batch} T={t} C={c}", () => backend.WeightedMeanPool(x, size, batch, t, c, 1, pooled), (double)rows * (c + 1) * f, flops: false);
        }
        finally
        {
            for (int i = owned.Count - 1; i >= 0; i--)
                owned[i].Dispose();
        }
    }

    /// <summary>Seeded values in [−0.5, 0.5) (xorshift: hundreds of millions of them in well under a second).</summary>
    private static float[] RandomFloats(long length, ulong seed)
    {
        var values = GC.AllocateUninitializedArray<float>(checked((int)length));
        ulong s = seed * 0x9E3779B97F4A7C15UL + 1;
        for (int i = 0; i < values.Length; i++)
        {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            values[i] = (s >> 40) * (1f / (1 << 24)) - 0.5f;
        }
        return values;
    }
}
