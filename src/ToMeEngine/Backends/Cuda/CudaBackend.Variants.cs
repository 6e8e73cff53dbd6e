namespace ToMe.Backends.Cuda;

// The ops of the merge strategies besides ToMe (kth, random, ToMato, ToMeCIS): kernels/class_importance.cu,
// assign_similar.cu, grid_components.cu and merge_assigned.cu (the score-weighted Merge is in CudaBackend.Merging.cs).
internal sealed partial class CudaBackend
{
    /// <summary>Largest metric dim of assign_similar_f32: (64·D + 32) floats of shared memory within the default 48 KiB.</summary>
    public const int MaxAssignDim = 191;

    /// <summary>Largest patch grid (H·W) of grid_components_f32: one block of 1024 threads, 4 patches each.</summary>
    public const int MaxGridPatches = 4096;

    private const int GridComponentsBlock = 1024;

    public void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score)
    {
        Current();
        long rows = (long)batch * tokens;
        var (qkvPtr, storage) = Activation(qkv, rows * 3 * heads * headDim, nameof(qkv));
        ulong attentionPtr = Float(classAttention, rows, nameof(classAttention));
        ulong scorePtr = Float(score, rows, nameof(score));
        if (rows == 0)
            return;
        // One warp per row, 8 per block; half values widened, the score in fp32.
        Launch("class_importance.cu", $"class_importance_{storage.Suffix()}", Blocks(rows, Block / 32), Block, 0,
            new KernelArgs().Add(qkvPtr).Add(attentionPtr).Add(checked((int)rows)).Add(heads).Add(headDim).Add(scorePtr));
    }

    public void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs, DeviceBuffer dest)
    {
        Current();
        if (dim > MaxAssignDim)
            throw new NotSupportedException($"kth/random assignment on the GPU supports metric dims up to {MaxAssignDim}, not {dim}");
        long rows = (long)batch * tokens;
        ulong metricPtr = Float(metric, rows * dim, nameof(metric));
        ulong rolePtr = Int(role, rows, nameof(role));
        ulong destPtr = Int(dest, rows, nameof(dest));
        if (rows == 0)
            return;
        ulong normalized = NormalizeRows(metricPtr, rows, dim);
        Launch("assign_similar.cu", "assign_similar_f32", new Dim3(Blocks(tokens, 32), checked((uint)batch)), Block, (uint)((64 * dim + 32) * sizeof(float)),
            new KernelArgs().Add(normalized).Add(rolePtr).Add(tokens).Add(dim).Add(protectedOutputs).Add(destPtr));
    }

    public void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth,
        float threshold, DeviceBuffer dest, DeviceBuffer counts)
    {
        Current();
        ArgumentOutOfRangeException.ThrowIfNegative(prefixTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(gridHeight);
        ArgumentOutOfRangeException.ThrowIfNegative(gridWidth);
        long patches = (long)gridHeight * gridWidth;
        if (tokens != prefixTokens + patches)
            throw new ArgumentException($"GridComponents: {tokens} tokens, expected {prefixTokens} prefix + {gridHeight}×{gridWidth} patches");
        if (patches > MaxGridPatches)
            throw new NotSupportedException($"grid components on the GPU support up to {MaxGridPatches} patches (64×64), not {gridHeight}×{gridWidth}");
        long rows = (long)batch * tokens;
        ulong metricPtr = Float(metric, rows * dim, nameof(metric));
        ulong destPtr = Int(dest, rows, nameof(dest));
        ulong countsPtr = Int(counts, batch, nameof(counts));
        if (batch == 0)
            return;
        ulong normalized = NormalizeRows(metricPtr, rows, dim);
        Launch("grid_components.cu", "grid_components_f32", checked((uint)batch), GridComponentsBlock, 0,
            new KernelArgs().Add(normalized).Add(tokens).Add(dim).Add(prefixTokens).Add(gridHeight).Add(gridWidth).Add(threshold)
                .Add(destPtr).Add(countsPtr));
    }

    public void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest,
        int batch, int tokens, int channels, int originalTokens, int newTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
    {
        Current();
        ArgumentOutOfRangeException.ThrowIfNegative(newTokens);
        ulong xPtr = Float(x, (long)batch * tokens * channels, nameof(x));
        ulong sizePtr = Float(size, (long)batch * tokens, nameof(size));
        ulong groupsPtr = Int(groups, (long)batch * originalTokens, nameof(groups));
        ulong destPtr = Int(dest, (long)batch * tokens, nameof(dest));
        ulong xOutPtr = Float(xOut, (long)batch * newTokens * channels, nameof(xOut));
        ulong sizeOutPtr = Float(sizeOut, (long)batch * newTokens, nameof(sizeOut));
        ulong groupsOutPtr = Int(groupsOut, (long)batch * originalTokens, nameof(groupsOut));
        if (batch == 0)
            return;
        long slots = (long)batch * newTokens;
        if (slots > 0)
        {
            // One warp per output slot, 8 per block.
            Launch("merge_assigned.cu", "merge_assigned_gather_f32", Blocks(slots, Block / 32), Block, 0,
                new KernelArgs().Add(xPtr).Add(sizePtr).Add(destPtr).Add(batch).Add(tokens).Add(channels).Add(newTokens).Add(xOutPtr).Add(sizeOutPtr));
        }
        long groupCount = (long)batch * originalTokens;
        if (groupCount > 0)
        {
            Launch("merge_assigned.cu", "merge_assigned_groups_i32", GridStride(groupCount), Block, 0,
                new KernelArgs().Add(groupsPtr).Add(destPtr).Add(batch).Add(tokens).Add(originalTokens).Add(groupsOutPtr));
        }
    }

    /// <summary>The L2-normalized rows of a metric in scratch memory (l2_normalize_rows_f32: zero rows stay zero).</summary>
    private ulong NormalizeRows(ulong metric, long rows, int dim)
    {
        ulong normalized = normalizedMetric.Get(rows * dim);
        Launch("bipartite_match.cu", "l2_normalize_rows_f32", Blocks(rows, Block / 32), Block, 0,
            new KernelArgs().Add(metric).Add(checked((int)rows)).Add(dim).Add(normalized));
        return normalized;
    }
}
