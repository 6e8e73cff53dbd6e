namespace ToMe.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <summary>Head dimensions with a fused attention kernel (attention.cu).</summary>
    public static readonly IReadOnlyList<int> AttentionHeadDims = [32, 64, 80, 96, 128];

    private const int AttentionQueriesPerBlock = 16, AttentionThreads = 128;

    public void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
    {
        Current();
        if (!AttentionHeadDims.Contains(headDim))
            throw new NotSupportedException($"the CUDA attention kernel supports head dims {string.Join(", ", AttentionHeadDims)}, not {headDim}");
        long rows = (long)batch * tokens;
        int c = heads * headDim;
        ulong qkvPtr = Float(qkv, rows * 3 * c, nameof(qkv));
        ulong sizePtr = OptionalFloat(size, rows, nameof(size));
        ulong outPtr = Float(output, rows * c, nameof(output));
        ulong keyMeanPtr = Float(keyMean, rows * headDim, nameof(keyMean));
        ulong classPtr = OptionalFloat(classAttention, rows, nameof(classAttention));
        if (rows == 0)
            return;
        float scale = (float)(1.0 / Math.Sqrt(headDim));   // the CPU's scale, bit for bit
        ulong stats = classAttention is null ? 0UL : classStats.Get((long)batch * heads * 2);

        Launch("attention.cu", $"attention_f32_d{headDim}", new Dim3(Blocks(tokens, AttentionQueriesPerBlock), checked((uint)heads), checked((uint)batch)),
            AttentionThreads, 0, new KernelArgs().Add(qkvPtr).Add(sizePtr).Add(tokens).Add(heads).Add(scale).Add(outPtr).Add(stats));
        Launch("attention.cu", "key_mean_f32", GridStride(rows * headDim), Block, 0,
            new KernelArgs().Add(qkvPtr).Add(checked((int)rows)).Add(heads).Add(headDim).Add(keyMeanPtr));
        if (classAttention is not null)
            Launch("attention.cu", "attention_class_row_f32", new Dim3(Blocks(tokens, 128), checked((uint)batch)), 128, 0,
                new KernelArgs().Add(qkvPtr).Add(sizePtr).Add(stats).Add(tokens).Add(heads).Add(headDim).Add(scale).Add(classPtr));
    }
}
