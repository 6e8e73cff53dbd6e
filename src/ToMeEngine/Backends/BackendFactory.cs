using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;

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
    /// <exception cref="NotSupportedException">cuda was asked for and no device is usable; the message is one line.</exception>
    public static IBackend Create(string name, int cpuThreads = 0, int device = 0)
    {
        switch (name)
        {
            case "cpu":
                return new CpuBackend(cpuThreads);
            case "cuda":
                if (CudaBackend.TryCreate(out var cuda, out var reason, device))
                    return cuda!;
                throw new NotSupportedException($"no CUDA device: {FirstLine(reason)}");
            case "auto":
                return !CudaDriver.IsEmulated && CudaBackend.TryCreate(out var found, out _, device) ? found! : new CpuBackend(cpuThreads);
            default:
                throw new ArgumentException($"backend '{name}' is not one of {string.Join(", ", Names)}");
        }
    }

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
