using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Graphs;

namespace ToMe.Backends;

/// <summary>
/// Backends by name, as the command line spells them: <c>cpu</c>, <c>cuda</c>, or <c>auto</c> (CUDA where a GPU is usable,
/// else CPU). The emulated CUDA device runs under <c>cuda</c> only: <c>auto</c> never picks a test device.
/// </summary>
internal static class BackendFactory
{
    public static readonly IReadOnlyList<string> Names = ["cpu", "cuda", "auto"];

    /// <param name="name">cpu, cuda or auto.</param>
    /// <param name="cpuThreads">Worker threads of the CPU backend; 0 uses every core.</param>
    /// <param name="device">The CUDA device ordinal for cuda and auto.</param>
    /// <param name="precision">
    /// The precision the caller will ask for: with auto, int8 (CPU-only) picks the CPU and tf32/bf16/fp16 (CUDA-only) the
    /// GPU. Whether the chosen backend runs it is <see cref="IBackend.ResolvePrecision"/>'s answer.
    /// </param>
    /// <param name="cudaGraphs">Capture and replay forwards as CUDA graphs (unless <c>TOME_CUDA_GRAPHS=0</c>).</param>
    /// <exception cref="NotSupportedException">cuda was asked for (or implied by the precision) and no device is usable; the message is one line.</exception>
    public static IBackend Create(string name, int cpuThreads = 0, int device = 0, Precision precision = Precision.Float32,
        bool cudaGraphs = true)
    {
        int graphs = cudaGraphs && Environment.GetEnvironmentVariable("TOME_CUDA_GRAPHS") is not ("0" or "off" or "false") ? GraphCapacity : 0;
        bool needsCuda = precision is Precision.TensorFloat32 or Precision.BFloat16 or Precision.Float16;
        switch (name)
        {
            case "cpu":
                return new CpuBackend(cpuThreads);
            case "auto" when precision == Precision.Int8:
                return new CpuBackend(cpuThreads);
            case "cuda" when precision == Precision.Int8:
                // Said before looking for a device, so a machine without one is told the same as one with.
                throw new NotSupportedException("int8 is CPU-only (the CPU backend): use backend cpu or auto");
            case "auto" when needsCuda && CudaDriver.IsEmulated:
                // auto never picks the emulated test device, for a half precision neither.
                throw new NotSupportedException($"{precision.Name()} needs the CUDA backend, and the only CUDA device is the emulated test " +
                                                "device, which backend auto never picks (name backend cuda to run on it)");
            case "cuda":
            case "auto" when needsCuda:
                if (CudaBackend.TryCreate(out var cuda, out var reason, device))
                    return new CudaGraphBackend(cuda!, graphs);
                throw new NotSupportedException(needsCuda
                    ? $"{precision.Name()} needs the CUDA backend, and there is no CUDA device: {FirstLine(reason)}"
                    : NoDevice(device, reason));
            case "auto":
                return !CudaDriver.IsEmulated && CudaBackend.TryCreate(out var found, out _, device)
                    ? new CudaGraphBackend(found!, graphs) : new CpuBackend(cpuThreads);
            default:
                throw new ArgumentException($"backend '{name}' is not one of {string.Join(", ", Names)}");
        }
    }

    /// <summary>Recorded forwards (each with its graph and pinned memory) an engine keeps, least recently used dropped.</summary>
    public const int GraphCapacity = 32;

    /// <summary>The CUDA backend behind <paramref name="backend"/>, if it runs on one.</summary>
    public static CudaBackend? Cuda(IBackend backend) => backend switch
    {
        CudaBackend cuda => cuda,
        CudaGraphBackend graphs => graphs.Cuda,
        _ => null,
    };

    /// <summary>Why CUDA device <paramref name="device"/> cannot be used, in one line (the driver's reason, its first line).</summary>
    internal static string NoDevice(int device, string? reason) =>
        (device == 0 ? "no CUDA device: " : $"no CUDA device {device}: ") + FirstLine(reason ?? "");

    /// <summary>The first line of a reason; a list of paths tried that follows it is left to <c>tome devices</c>.</summary>
    private static string FirstLine(string text)
    {
        int newline = text.IndexOf('\n');
        if (newline < 0)
            return text.TrimEnd();
        var line = text[..newline].TrimEnd();
        if (line.EndsWith("Tried:", StringComparison.Ordinal))
            line = line[..^"Tried:".Length].TrimEnd() + " (tome devices lists the paths tried)";
        return line;
    }
}
