using System.Diagnostics;
using ToMe.Backends;
using ToMe.Model;

namespace ToMe.Benchmarking;

/// <summary>Time spent in one kind of op per forward pass (<c>tome bench --profile</c>).</summary>
internal sealed record OpTime(string Op, double CallsPerForward, double MillisecondsPerForward, double PercentOfForward);

/// <summary>
/// An <see cref="IBackend"/> that forwards every op to a synchronous backend (the CPU one) and adds up the time of each
/// kind of op. Linear layers are told apart by their shape and epilogue, which a ViT block makes unambiguous.
/// </summary>
/// <remarks>
/// It keeps the wrapped backend's way of running a batch, so the profile describes the path that is benchmarked: with
/// images in parallel (<see cref="IBackend.ForEachImage"/>, one image per thread, each op of an image on its thread
/// alone) every thread times the ops it runs and keeps its own tally (no lock or shared counter per op), and the report
/// sums the tallies: the times are then thread-time, summed over <see cref="SummedThreads"/> threads, and the forward's
/// thread-time is its wall time × those threads. An op run over a whole batch in such a forward (a remainder smaller than
/// the concurrency, its work split over all threads) holds every thread: it counts its wall time × threads.
/// With threadTime (Linux), an op inside an image's body is charged its thread's CPU time instead of its wall time: on a
/// shared machine the time other processes held the core then drops out of the ops (it is left under "outside ops"),
/// so the per-op times, and rates derived from them, stay steady.
/// </remarks>
internal sealed class ProfilingBackend(IBackend inner, ModelConfig config, bool threadTime = false) : ForwardingBackend(inner)
{
    // Ticks of ops run inside an image's body (thread-time already) and of ops run over a whole batch (wall time).
    private sealed class Tally
    {
        public readonly Dictionary<string, (long ImageTicks, long BatchTicks, long Calls)> Ops = [];
        public bool InImage;
    }

    private readonly ThreadLocal<Tally> tallies = new(() => new Tally(), trackAllValues: true);
    private readonly List<string> order = [];
    private long imageRounds;

    /// <summary>Images run as the wrapped backend runs them: the ops below are timed per thread.</summary>
    public override int ImageConcurrency => Inner.ImageConcurrency;

    public override void ForEachImage(int count, Action<int> body)
    {
        if (count > 1 && Inner.ImageConcurrency > 1)
            Interlocked.Increment(ref imageRounds);
        Inner.ForEachImage(count, i =>
        {
            var tally = tallies.Value!;
            tally.InImage = true;
            try
            {
                body(i);
            }
            finally
            {
                tally.InImage = false;
            }
        });
    }

    /// <summary>
    /// 1 when every measured forward ran its batch as one (the times are wall time and add up to the forward's); the
    /// wrapped backend's concurrency when images ran in parallel (the times are thread-time summed over that many threads).
    /// </summary>
    public int SummedThreads => Interlocked.Read(ref imageRounds) > 0 ? Math.Max(1, Inner.ImageConcurrency) : 1;

    /// <summary>Forgets what was measured so far (after the warm-up); call it between forwards.</summary>
    public void Reset()
    {
        foreach (var tally in tallies.Values)
            tally.Ops.Clear();
        lock (order)
            order.Clear();
        Interlocked.Exchange(ref imageRounds, 0);
    }

    /// <summary>
    /// Per-op times averaged over <paramref name="forwards"/> passes that took <paramref name="forwardMilliseconds"/> of wall
    /// time in all, as a share of the forwards' thread-time (wall time × <see cref="SummedThreads"/>).
    /// </summary>
    public IReadOnlyList<OpTime> Report(int forwards, double forwardMilliseconds)
    {
        int threads = SummedThreads;
        double total = forwardMilliseconds * threads / forwards;
        var all = tallies.Values;
        List<string> ops;
        lock (order)
            ops = [.. order];
        var rows = ops.Select(op =>
        {
            long ticks = 0, calls = 0;
            foreach (var tally in all)
                if (tally.Ops.TryGetValue(op, out var t))
                {
                    ticks += t.ImageTicks + t.BatchTicks * threads;
                    calls += t.Calls;
                }
            double ms = ticks * 1000.0 / Stopwatch.Frequency / forwards;
            return new OpTime(op, (double)calls / forwards, ms, 100 * ms / total);
        }).ToList();
        double other = total - rows.Sum(r => r.MillisecondsPerForward);
        rows.Add(new OpTime("outside ops (uploads, bookkeeping)", 0, other, 100 * other / total));
        return rows;
    }

    private void Time(string op, Action body)
    {
        var tally = tallies.Value!;
        var from = Start(tally);
        body();
        Add(tally, op, Elapsed(from));
    }

    // Thread CPU time (--profile-thread-time) inside an image's ops, so a descheduled thread is not charged; wall time
    // otherwise. The start is (clock kind, reading); Elapsed turns it into Stopwatch ticks.
    private (bool Cpu, long At) Start(Tally tally) =>
        threadTime && tally.InImage && ThreadCpuClock.TryNanoseconds(out long ns) ? (true, ns) : (false, Stopwatch.GetTimestamp());

    private static long Elapsed((bool Cpu, long At) from)
    {
        if (!from.Cpu)
            return Stopwatch.GetTimestamp() - from.At;
        ThreadCpuClock.TryNanoseconds(out long to);
        return (long)((to - from.At) * (Stopwatch.Frequency / 1e9));
    }

    private void Add(Tally tally, string op, long elapsed)
    {
        if (!tally.Ops.TryGetValue(op, out var t))
            lock (order)
                if (!order.Contains(op))
                    order.Add(op);
        tally.Ops[op] = tally.InImage ? (t.ImageTicks + elapsed, t.BatchTicks, t.Calls + 1) : (t.ImageTicks, t.BatchTicks + elapsed, t.Calls + 1);
    }

    private string LinearName(ILinearWeights w, LinearEpilogue epilogue)
    {
        int c = config.EmbedDim, o = w.OutFeatures, i = w.InFeatures;
        bool residual = epilogue == LinearEpilogue.BiasAccumulate;
        if (epilogue == LinearEpilogue.BiasGelu)
            return "linear fc1 + GELU";
        if (o == 3 * c && i == c)
            return "linear qkv";
        if (residual && o == c && i == c)
            return "linear proj + residual";
        if (residual && o == c && i == config.MlpHidden)
            return "linear fc2 + residual";
        return o == config.NumClasses ? "head" : $"linear {o}x{i}";
    }

    public override void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x) =>
        Time("patch embed", () => Inner.PatchEmbed(images, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x));

    public override void EmbedImages(ReadOnlySpan<float> images, DeviceBuffer staging, DeviceBuffer? prefix, DeviceBuffer pos,
        ILinearWeights patch, int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        // The upload is part of the op where the backend reads the images in place: timed as one.
        var tally = tallies.Value!;
        var from = Start(tally);
        Inner.EmbedImages(images, staging, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
        Add(tally, "patch embed", Elapsed(from));
    }

    public override void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y) =>
        Time("layer norm", () => Inner.LayerNorm(x, weight, bias, rows, channels, eps, y));

    public override void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y) =>
        Time(LinearName(weights, epilogue), () => Inner.Linear(x, weights, rows, epilogue, y));

    /// <summary>int8 MLPs run fused (one row block through fc1, GELU and fc2) and are timed as one op; others layer by layer.</summary>
    public override void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y)
    {
        if (fc1.Precision == Precision.Int8 && fc2.Precision == Precision.Int8)
        {
            Time("mlp fc1 + GELU + fc2 + residual (int8, fused)", () => Inner.Mlp(x, fc1, fc2, rows, hidden, y));
            return;
        }
        Linear(x, fc1, rows, LinearEpilogue.BiasGelu, hidden);
        Linear(hidden, fc2, rows, LinearEpilogue.BiasAccumulate, y);
    }

    public override void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention) =>
        Time("attention", () => Inner.Attention(qkv, size, batch, tokens, heads, headDim, output, keyMean, classAttention));

    public override void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, DeviceBuffer best, DeviceBuffer bestIndex) =>
        Time("merge: bipartite match", () => Inner.BipartiteMatch(metric, batch, tokens, dim, prefixTokens, best, bestIndex));

    public override void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order) =>
        Time("merge: top r", () => Inner.SelectTopR(best, batch, setA, r, keepUnmergedInOrder, order));

    public override void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex, DeviceBuffer? weight,
        int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut) =>
        Time("merge: weighted average", () => Inner.Merge(x, size, groups, order, bestIndex, weight, batch, tokens, channels, originalTokens, r,
            prefixTokens, xOut, sizeOut, groupsOut));

    public override void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score) =>
        Time("merge: class importance", () => Inner.ClassImportance(qkv, classAttention, batch, tokens, heads, headDim, score));

    public override void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs, DeviceBuffer dest) =>
        Time("merge: assign", () => Inner.AssignToMostSimilar(metric, role, batch, tokens, dim, protectedOutputs, dest));

    public override void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth,
        float threshold, DeviceBuffer dest, DeviceBuffer counts) =>
        Time("merge: grid components", () => Inner.GridComponents(metric, batch, tokens, dim, prefixTokens, gridHeight, gridWidth, threshold, dest, counts));

    public override void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest,
        int batch, int tokens, int channels, int originalTokens, int newTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut) =>
        Time("merge: weighted average", () => Inner.MergeAssigned(x, size, groups, dest, batch, tokens, channels, originalTokens, newTokens,
            xOut, sizeOut, groupsOut));

    public override void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled) =>
        Time("pooling", () => Inner.GatherPrefix(x, batch, tokens, channels, count, pooled));

    public override void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled) =>
        Time("pooling", () => Inner.WeightedMeanPool(x, size, batch, tokens, channels, skip, pooled));

    /// <summary>The wrapped backend belongs to the caller.</summary>
    public override void Dispose() => tallies.Dispose();
}
