namespace ToMe.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <summary>Head dimensions with a fused attention kernel (attention.cu, in every storage type).</summary>
    public static readonly IReadOnlyList<int> AttentionHeadDims = [32, 64, 80, 96, 128];

    private const int AttentionThreads = 128;

    // A fused attention entry point and its launch shape; WritesClassStats: it takes the class_stats argument (the class
    // row's softmax max and sum).
    private sealed record AttentionKernel(string File, string Entry, int QueriesPerBlock, bool WritesClassStats);

    /// <summary>
    /// The one place that picks the attention kernel. Half storage at head dim 64 on sm_80 and newer: FlashAttention-2 on
    /// tensor cores (flash_attention.cu), unless the class row's softmax statistics are needed (ToMeCIS), which only
    /// attention.cu writes. Everything else (fp32, sm_70/75, other head dims): attention.cu on CUDA cores in the tensors'
    /// storage type.
    /// </summary>
    private AttentionKernel ChooseAttention(FloatStorage storage, int headDim, bool classStats) =>
        storage != FloatStorage.F32 && headDim == 64 && !classStats && context.Info.ComputeMajor >= 8
            ? new("flash_attention.cu", $"flash_attention_{storage.Suffix()}_d64", 64, false)
            : new("attention.cu", $"attention_{storage.Suffix()}_d{headDim}", 16, true);

    public void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
    {
        Current();
        if (!AttentionHeadDims.Contains(headDim))
            throw new NotSupportedException($"the CUDA attention kernel supports head dims {string.Join(", ", AttentionHeadDims)}, not {headDim}");
        long rows = (long)batch * tokens;
        int c = heads * headDim;
        var (qkvPtr, storage) = Activation(qkv, rows * 3 * c, nameof(qkv));
        var (outPtr, outStorage) = Activation(output, rows * c, nameof(output));
        if (outStorage != storage)
            throw new ArgumentException($"qkv is {storage.Suffix()} and the attention output {outStorage.Suffix()}: one storage type for both");
        ulong sizePtr = OptionalFloat(size, rows, nameof(size));
        ulong keyMeanPtr = Float(keyMean, rows * headDim, nameof(keyMean));
        ulong classPtr = OptionalFloat(classAttention, rows, nameof(classAttention));
        if (rows == 0)
            return;
        float scale = (float)(1.0 / Math.Sqrt(headDim));   // the CPU's scale, bit for bit
        ulong stats = classAttention is null ? 0UL : classStats.Get((long)batch * heads * 2);

        var kernel = ChooseAttention(storage, headDim, classAttention is not null);
        var args = new KernelArgs().Add(qkvPtr).Add(sizePtr).Add(tokens).Add(heads).Add(scale).Add(outPtr);
        if (kernel.WritesClassStats)
            args.Add(stats);
        Launch(kernel.File, kernel.Entry, new Dim3(Blocks(tokens, kernel.QueriesPerBlock), checked((uint)heads), checked((uint)batch)),
            AttentionThreads, 0, args);
        // ToMe's metric and the class row in fp32 from the stored (half) keys.
        Launch("attention.cu", $"key_mean_{storage.Suffix()}", GridStride(rows * headDim), Block, 0,
            new KernelArgs().Add(qkvPtr).Add(checked((int)rows)).Add(heads).Add(headDim).Add(keyMeanPtr));
        if (classAttention is not null)
            Launch("attention.cu", $"attention_class_row_{storage.Suffix()}", new Dim3(Blocks(tokens, 128), checked((uint)batch)), 128, 0,
                new KernelArgs().Add(qkvPtr).Add(sizePtr).Add(stats).Add(tokens).Add(heads).Add(headDim).Add(scale).Add(classPtr));
    }
}
