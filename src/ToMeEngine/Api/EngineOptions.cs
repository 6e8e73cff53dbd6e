using ToMe.Imaging;
using ToMe.Merging;

namespace ToMe;

/// <summary>Where the forward pass runs.</summary>
public enum BackendKind
{
    /// <summary>CUDA when a device is usable, else the CPU.</summary>
    Auto,

    /// <summary>The CPU, with <see cref="EngineOptions.Threads"/> workers: float32 and int8.</summary>
    Cpu,

    /// <summary>The CUDA device <see cref="EngineOptions.Device"/>; loading fails with <see cref="NotSupportedException"/> where there is none.</summary>
    Cuda,
}

/// <summary>How a <see cref="ToMeEngine"/> runs its model. Immutable; the defaults reproduce timm + ToMe at r = 0.</summary>
public sealed record EngineOptions
{
    /// <summary>Where the forward pass runs; <see cref="BackendKind.Auto"/> (a usable CUDA device, else the CPU) by default.</summary>
    public BackendKind Backend { get; init; } = BackendKind.Auto;

    /// <summary>
    /// Numeric precision (float32, the exact mode, by default). Checked against the backend when the engine loads: int8 runs
    /// on the CPU only, bf16/fp16/tf32 need CUDA. With <see cref="BackendKind.Auto"/>, int8 picks the CPU and the half
    /// precisions the GPU.
    /// </summary>
    public Precision Precision { get; init; } = Precision.Float32;

    /// <summary>The merging algorithm (ToMe by default).</summary>
    public MergeStrategy Merge { get; init; } = MergeStrategy.ToMe;

    /// <summary>How many tokens each block merges (ToMe, random and CIS); r = 0 by default.</summary>
    public MergeSchedule Schedule { get; init; } = MergeSchedule.None;

    /// <summary>Proportional attention (log size bias); ToMe's default.</summary>
    public bool ProportionalAttention { get; init; } = true;

    /// <summary>
    /// Images per forward pass; larger batches are split. Loading refuses a size past what the backend's buffers hold
    /// for the model (the error gives the largest that fits).
    /// </summary>
    public int MaxBatchSize { get; init; } = 32;

    /// <summary>CPU worker threads for one forward pass; 0 uses every core. At most <see cref="MaxThreads"/>.</summary>
    public int Threads { get; init; }

    /// <summary>
    /// The most <see cref="Threads"/> an engine takes. Every thread is a dedicated worker with its own scratch buffers, so a
    /// count far past the cores only costs memory and switching (100000 exhausted memory). The bound is fixed rather than a
    /// multiple of this machine's cores so that a setting valid on one machine is valid on every other; 1024 is above the
    /// logical cores of today's largest two-socket servers (2 × 192 cores × 2 SMT = 768).
    /// </summary>
    public const int MaxThreads = 1024;

    /// <summary>The CUDA device ordinal the CUDA backend runs on (0 by default); ignored by the CPU backend.</summary>
    public int Device { get; init; }

    /// <summary>
    /// Run one forward pass over a blank batch while loading (on by default), so the first real call does not pay for
    /// compiling the forward path's code (.NET's JIT; the CUDA kernels on a GPU) or allocating its buffers: with it the first
    /// <see cref="ToMeEngine.Classify(RgbImage, int)"/> is as fast as the ones after. Off for a quicker load when first-call
    /// latency does not matter. The emulated CUDA device (a test device) is never warmed up.
    /// </summary>
    public bool WarmUp { get; init; } = true;

    /// <summary>Limits for decoding images (maximum pixels, file size).</summary>
    public DecodeOptions Decode { get; init; } = DecodeOptions.Default;

    /// <summary>Limits for reading model files (header size, tensor count, config size and JSON depth).</summary>
    public Weights.ModelLimits ModelLimits { get; init; } = Weights.ModelLimits.Default;

    /// <summary>
    /// GPU memory the engine may plan for, in bytes; 0 means no limit. On the CUDA backend, loading refuses a model
    /// whose estimated need at <see cref="MaxBatchSize"/> exceeds it (see <see cref="GpuMemoryBudget"/>); the CPU backend ignores it.
    /// </summary>
    public long GpuMemoryBudgetBytes { get; init; }

    /// <summary>
    /// CUDA graphs on the CUDA backend (on by default): each (batch, schedule, merge, precision) forward is captured once,
    /// after a first run, and replayed with one launch; ToMato always runs uncaptured (docs/cuda.md). Off, every forward
    /// launches its kernels one by one. The environment variable <c>TOME_CUDA_GRAPHS=0</c> turns them off as well.
    /// </summary>
    public bool CudaGraphs { get; init; } = true;

    internal void Validate()
    {
        if (MaxBatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "must be at least 1");
        if (GpuMemoryBudgetBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(GpuMemoryBudgetBytes), GpuMemoryBudgetBytes, "must be 0 (no limit) or positive");
        ArgumentNullException.ThrowIfNull(Decode);
        Decode.Validate();
        ArgumentNullException.ThrowIfNull(Schedule);
        ArgumentNullException.ThrowIfNull(Merge);
        ArgumentNullException.ThrowIfNull(ModelLimits);
        ModelLimits.Validate();
        if (Threads is < 0 or > MaxThreads)
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, $"must be 0 (all cores) or 1 to {MaxThreads}");
        if (Device < 0)
            throw new ArgumentOutOfRangeException(nameof(Device), Device, "must be a CUDA device ordinal (0 or more)");
        if (!Enum.IsDefined(Backend))
            throw new ArgumentOutOfRangeException(nameof(Backend), Backend, "not a BackendKind");
        if (!Enum.IsDefined(Precision))
            throw new ArgumentOutOfRangeException(nameof(Precision), Precision, "not a Precision");
    }
}

/// <summary>One class of a classification: its index in the head, its label and its softmax probability.</summary>
public readonly record struct Prediction(int ClassIndex, string Label, float Probability);
