namespace ToMe.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <summary>Largest metric dim of bipartite_best_f32: (64·D + 32) floats of shared memory within the default 48 KiB.</summary>
    public const int MaxMatchDim = 191;

    /// <summary>Largest set A of topr_sort_f32 (its shared-memory network).</summary>
    public const int MaxSetA = 4096;

    /// <summary>Largest token count of merge_plan_i32 ((⌈T/2⌉ + T) ints of shared memory within 48 KiB).</summary>
    public const int MaxMergeTokens = 8192;

    public void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens,
        DeviceBuffer best, DeviceBuffer bestIndex)
    {
        Current();
        ArgumentOutOfRangeException.ThrowIfNegative(prefixTokens);
        if (dim > MaxMatchDim)
            throw new NotSupportedException($"bipartite matching on the GPU supports metric dims up to {MaxMatchDim}, not {dim}");
        int ta = (tokens + 1) / 2;
        long rows = (long)batch * tokens;
        ulong metricPtr = Float(metric, rows * dim, nameof(metric));
        ulong bestPtr = Float(best, (long)batch * ta, nameof(best));
        ulong indexPtr = Int(bestIndex, (long)batch * ta, nameof(bestIndex));
        if (rows == 0)
            return;
        ulong normalized = normalizedMetric.Get(rows * dim);
        Launch("bipartite_match.cu", "l2_normalize_rows_f32", Blocks(rows, Block / 32), Block, 0,
            new KernelArgs().Add(metricPtr).Add(checked((int)rows)).Add(dim).Add(normalized));
        Launch("bipartite_match.cu", "bipartite_best_f32", new Dim3(Blocks(ta, 32), checked((uint)batch)), Block, (uint)((64 * dim + 32) * sizeof(float)),
            new KernelArgs().Add(normalized).Add(tokens).Add(dim).Add((prefixTokens + 1) / 2).Add(prefixTokens / 2).Add(bestPtr).Add(indexPtr));
    }

    public void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order)
    {
        Current();
        if (setA > MaxSetA)
            throw new NotSupportedException($"the GPU top-r sort supports sets of up to {MaxSetA} tokens, not {setA}");
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(r, setA);
        ulong bestPtr = Float(best, (long)batch * setA, nameof(best));
        ulong orderPtr = Int(order, (long)batch * setA, nameof(order));
        if (batch == 0 || setA == 0)
            return;
        Launch("topr_sort.cu", "topr_sort_f32", checked((uint)batch), 512, 0,
            new KernelArgs().Add(bestPtr).Add(setA).Add(r).Add(keepUnmergedInOrder ? 1 : 0).Add(orderPtr));
    }

    public void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex, DeviceBuffer? weight,
        int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
    {
        Current();
        if (tokens > MaxMergeTokens)
            throw new NotSupportedException($"the GPU merge supports up to {MaxMergeTokens} tokens, not {tokens}");
        int ta = (tokens + 1) / 2, newTokens = tokens - r;
        ArgumentOutOfRangeException.ThrowIfNegative(r);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixTokens);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(r, ta - (prefixTokens + 1) / 2);
        ulong xPtr = Float(x, (long)batch * tokens * channels, nameof(x));
        ulong sizePtr = Float(size, (long)batch * tokens, nameof(size));
        ulong groupsPtr = Int(groups, (long)batch * originalTokens, nameof(groups));
        ulong orderPtr = Int(order, (long)batch * ta, nameof(order));
        ulong indexPtr = Int(bestIndex, (long)batch * ta, nameof(bestIndex));
        ulong xOutPtr = Float(xOut, (long)batch * newTokens * channels, nameof(xOut));
        ulong sizeOutPtr = Float(sizeOut, (long)batch * newTokens, nameof(sizeOut));
        ulong groupsOutPtr = Int(groupsOut, (long)batch * originalTokens, nameof(groupsOut));
        ulong weightPtr = OptionalFloat(weight, (long)batch * tokens, nameof(weight));
        if (batch == 0 || tokens == 0)
            return;
        ulong ownOf = mergeOwner.Get((long)batch * newTokens);
        ulong srcDst = mergeDestination.Get((long)batch * ta);
        Launch("merge.cu", "merge_plan_i32", checked((uint)batch), Block, (uint)((ta + tokens) * sizeof(int)),
            new KernelArgs().Add(orderPtr).Add(indexPtr).Add(groupsPtr).Add(tokens).Add(originalTokens).Add(r).Add((prefixTokens + 1) / 2).Add(prefixTokens / 2)
                .Add(ownOf).Add(srcDst).Add(groupsOutPtr));
        // One warp per output token, 8 per block; ToMeCIS weighs the values by its scores (sizes where a group's sum to 0).
        if (weight is null)
            Launch("merge.cu", "merge_gather_f32", Blocks((long)batch * newTokens, Block / 32), Block, 0,
                new KernelArgs().Add(xPtr).Add(sizePtr).Add(ownOf).Add(srcDst).Add(batch).Add(tokens).Add(channels).Add(r).Add(xOutPtr).Add(sizeOutPtr));
        else
            Launch("merge.cu", "merge_gather_weighted_f32", Blocks((long)batch * newTokens, Block / 32), Block, 0,
                new KernelArgs().Add(xPtr).Add(sizePtr).Add(weightPtr).Add(ownOf).Add(srcDst).Add(batch).Add(tokens).Add(channels).Add(r)
                    .Add(xOutPtr).Add(sizeOutPtr));
    }

    public void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled)
    {
        Current();
        ulong xPtr = Float(x, (long)batch * tokens * channels, nameof(x));
        ulong pooledPtr = Float(pooled, (long)batch * count * channels, nameof(pooled));
        long n = (long)batch * count * channels;
        if (n == 0)
            return;
        Launch("pool.cu", "gather_prefix_f32", GridStride(n), Block, 0,
            new KernelArgs().Add(xPtr).Add(batch).Add(tokens).Add(channels).Add(count).Add(pooledPtr));
    }

    public void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled)
    {
        Current();
        ulong xPtr = Float(x, (long)batch * tokens * channels, nameof(x));
        ulong sizePtr = Float(size, (long)batch * tokens, nameof(size));
        ulong pooledPtr = Float(pooled, (long)batch * channels, nameof(pooled));
        if (batch == 0 || channels == 0)
            return;
        Launch("pool.cu", "weighted_mean_pool_f32", new Dim3(Blocks(channels, 128), checked((uint)batch)), 128, 0,
            new KernelArgs().Add(xPtr).Add(sizePtr).Add(batch).Add(tokens).Add(channels).Add(skip).Add(pooledPtr));
    }
}
