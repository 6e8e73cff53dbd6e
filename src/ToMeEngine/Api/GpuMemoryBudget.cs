using ToMe.Model;

namespace ToMe;

/// <summary>
/// A planning estimate of the GPU memory a model needs, checked against <see cref="EngineOptions.GpuMemoryBudgetBytes"/>
/// when an engine is built on the CUDA backend. It counts float32 weights, the forward pass's workspace at
/// <see cref="EngineOptions.MaxBatchSize"/> (mirroring its buffers) and one full attention matrix per image and head,
/// an upper bound for the attention kernels. It is an estimate for refusing clearly oversized work before any
/// device allocation, not an allocator: the CUDA context and library handles add a few hundred MiB on top.
/// </summary>
public static class GpuMemoryBudget
{
    /// <summary>The estimated GPU memory, in bytes, of an engine for <paramref name="config"/> running batches of up to <paramref name="batch"/> images.</summary>
    public static long EstimateBytes(ModelConfig config, int batch)
    {
        ArgumentNullException.ThrowIfNull(config);
        long s = config.ImageSize, t = config.Tokens, c = config.EmbedDim;
        long perImage = 3 * s * s                        // input
            + t * c * 4 + t * 3 * c                      // X, XNext, Hidden, the copy of X the merge keeps; QKV
            + t * config.MlpHidden + t * config.HeadDim  // MLP hidden, merge metric
            + 12 * t                                     // sizes, groups, scores and merge bookkeeping
            + (long)config.NumHeads * t * t              // attention probabilities
            + config.NumClasses + Math.Max(1, config.PrefixTokens) * c;
        return 4 * (config.ParameterCount + batch * perImage);
    }

    /// <summary>Throws when the backend is CUDA, a budget is set and the estimate exceeds it.</summary>
    /// <exception cref="InvalidOperationException">The model does not fit the budget; the message gives both numbers.</exception>
    internal static void Check(ModelConfig config, EngineOptions options, string backendName)
    {
        if (options.GpuMemoryBudgetBytes == 0 || backendName != "cuda")
            return;
        long need = EstimateBytes(config, options.MaxBatchSize);
        if (need > options.GpuMemoryBudgetBytes)
            throw new InvalidOperationException(
                $"{config.Architecture} at MaxBatchSize {options.MaxBatchSize} needs about {need / (1024.0 * 1024):F0} MiB of GPU memory, " +
                $"over EngineOptions.GpuMemoryBudgetBytes ({options.GpuMemoryBudgetBytes / (1024.0 * 1024):F0} MiB); lower MaxBatchSize or raise the budget");
    }
}
