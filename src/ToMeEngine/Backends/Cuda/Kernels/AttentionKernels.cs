namespace ToMe.Backends.Cuda.Kernels;

/// <summary>What multiplies Q·Kᵀ and P·V.</summary>
internal enum AttentionInstructions
{
    /// <summary>attention.cu: fp32 FMAs on CUDA cores, any architecture.</summary>
    CudaCores,

    /// <summary>flash_attention.cu: mma.sync m16n8k16 with ldmatrix and cp.async (sm_80+, fp16 and bf16).</summary>
    MmaM16N8K16,

    /// <summary>flash_attention.cu: mma.sync m8n8k4 (sm_70+, fp16 only: V100 and T4's tensor cores).</summary>
    MmaM8N8K4,
}

/// <summary>
/// The pointers and sizes of one <see cref="IBackend.Attention"/> call (0 for an absent buffer). ClassScratch: device
/// floats for the class row's intermediate results, <see cref="AttentionVariant.ClassScratchFloats"/> long; 0 when
/// ClassAttention is 0.
/// </summary>
internal readonly record struct AttentionCall(
    ulong Qkv, ulong Size, int Batch, int Tokens, int Heads, int HeadDim, float Scale,
    ulong Output, ulong KeyMean, ulong ClassAttention, ulong ClassScratch);

/// <summary>One kernel launch of an attention variant (static shared memory only: no dynamic bytes).</summary>
internal readonly record struct KernelLaunch(string File, string EntryPoint, Dim3 Grid, Dim3 Block, KernelArgs Args);

/// <summary>
/// One fused attention kernel and the launches that produce everything <see cref="IBackend.Attention"/> promises:
/// the output, the keys averaged over heads (ToMe's metric) and, when asked, the class token's attention row.
/// </summary>
internal sealed record AttentionVariant(string File, string EntryPoint, AttentionInstructions Instructions, int QueriesPerBlock, int Threads)
{
    private bool Flash => Instructions != AttentionInstructions.CudaCores;

    private string StorageName => EntryPoint.Split('_')[^2];   // attention_f16_d64, flash_attention_m884_f16_d64 -> f16

    /// <summary>
    /// Floats of scratch the class row needs: the flash kernels keep query 0's logits per head and its (max, sum) per
    /// head (B·H·(T + 2)); the CUDA-core kernel only the (max, sum) (B·H·2) and recomputes the logits.
    /// </summary>
    public long ClassScratchFloats(int batch, int tokens, int heads) => (long)batch * heads * ((Flash ? tokens : 0) + 2);

    /// <summary>The launches of one call, in stream order.</summary>
    public IReadOnlyList<KernelLaunch> Launches(AttentionCall c)
    {
        var grid = new Dim3(Blocks(c.Tokens, QueriesPerBlock), checked((uint)c.Heads), checked((uint)c.Batch));
        bool wantsClass = c.ClassAttention != 0;
        if (wantsClass && c.ClassScratch == 0)
            throw new ArgumentException("the class row needs scratch (ClassScratchFloats)", nameof(c));
        var classRow = new Dim3(Blocks(c.Tokens, 128), checked((uint)c.Batch));
        if (Flash)
        {
            // The scratch: logits [B][H][T], then the stats [B][H][2].
            ulong logits = wantsClass ? c.ClassScratch : 0, stats = wantsClass ? c.ClassScratch + (ulong)c.Batch * (ulong)c.Heads * (ulong)c.Tokens * 4 : 0;
            var main = new KernelLaunch(File, EntryPoint, grid, (uint)Threads, new KernelArgs().Add(c.Qkv).Add(c.Size).Add(c.Tokens).Add(c.Heads)
                .Add(c.Scale).Add(c.Output).Add(c.KeyMean).Add(logits).Add(stats));
            return wantsClass
                ? [main, new KernelLaunch(File, "flash_class_row", classRow, 128,
                    new KernelArgs().Add(logits).Add(stats).Add(c.Tokens).Add(c.Heads).Add(c.ClassAttention))]
                : [main];
        }
        long rows = (long)c.Batch * c.Tokens;
        var launches = new List<KernelLaunch>
        {
            new(File, EntryPoint, grid, (uint)Threads, new KernelArgs().Add(c.Qkv).Add(c.Size).Add(c.Tokens).Add(c.Heads).Add(c.Scale)
                .Add(c.Output).Add(wantsClass ? c.ClassScratch : 0UL)),
            new(File, $"key_mean_{StorageName}", (uint)Math.Clamp((rows * c.HeadDim + 255) / 256, 1, 65535), 256,
                new KernelArgs().Add(c.Qkv).Add(checked((int)rows)).Add(c.Heads).Add(c.HeadDim).Add(c.KeyMean)),
        };
        if (wantsClass)
            launches.Add(new(File, $"attention_class_row_{StorageName}", classRow, 128, new KernelArgs().Add(c.Qkv).Add(c.Size)
                .Add(c.ClassScratch).Add(c.Tokens).Add(c.Heads).Add(c.HeadDim).Add(c.Scale).Add(c.ClassAttention)));
        return launches;
    }

    private static uint Blocks(long items, int perBlock) => checked((uint)Math.Max(1, (items + perBlock - 1) / perBlock));
}

/// <summary>
/// Every fused attention kernel the engine has, by architecture, storage type and head dim: the one place a backend's
/// dispatch asks which to launch (kernels/attention.cu and kernels/flash_attention.cu describe the kernels themselves).
/// </summary>
internal static class AttentionKernels
{
    /// <summary>Head dims with a fused kernel in every storage type and on every architecture.</summary>
    public static readonly IReadOnlyList<int> HeadDims = [32, 64, 80, 96, 128];

    /// <summary>
    /// The fastest variant for a device of compute capability <paramref name="computeCapability"/> (major·10 + minor:
    /// 70, 75, 80, 86, 89, 90): half storage on tensor cores where the GPU has them for that type (fp16 from sm_70,
    /// bf16 from sm_80), otherwise CUDA cores; fp32 on CUDA cores.
    /// </summary>
    public static AttentionVariant Select(int computeCapability, FloatStorage storage, int headDim)
    {
        if (!HeadDims.Contains(headDim))
            throw new NotSupportedException($"the CUDA attention kernels support head dims {string.Join(", ", HeadDims)}, not {headDim}");
        if (computeCapability < 70)
            throw new NotSupportedException($"compute capability {computeCapability / 10}.{computeCapability % 10}: the engine needs sm_70 or newer");
        if (storage != FloatStorage.F32 && computeCapability >= 80)
            return new("flash_attention.cu", $"flash_attention_{storage.Suffix()}_d{headDim}", AttentionInstructions.MmaM16N8K16, 64, 128);
        if (storage == FloatStorage.F16)
            return new("flash_attention.cu", $"flash_attention_m884_f16_d{headDim}", AttentionInstructions.MmaM8N8K4, 64, 128);
        return OnCudaCores(storage, headDim);
    }

    /// <summary>The CUDA-core kernel for any storage type and architecture (what <see cref="Select"/> falls back to).</summary>
    public static AttentionVariant OnCudaCores(FloatStorage storage, int headDim)
    {
        if (!HeadDims.Contains(headDim))
            throw new NotSupportedException($"the CUDA attention kernels support head dims {string.Join(", ", HeadDims)}, not {headDim}");
        return new("attention.cu", $"attention_{storage.Suffix()}_d{headDim}", AttentionInstructions.CudaCores, 16, 128);
    }
}
