using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda.Kernels;

/// <summary>One kernel file compiled for one architecture: success, CUBIN size, per-function resources, or the failure's log.</summary>
internal sealed record KernelBuildResult(
    string FileName,
    string Arch,
    bool Success,
    int CubinBytes,
    bool FromCache,
    IReadOnlyList<KernelResourceUsage> Functions,
    string? Error,
    string Log);

/// <summary>Compiles every embedded kernel file for every requested architecture (the <c>tome kernels compile</c> check).</summary>
internal static class KernelBuildReport
{
    public static IReadOnlyList<KernelBuildResult> CompileAll(KernelCompiler compiler, IEnumerable<string> archs, bool lineInfo = false)
    {
        var results = new List<KernelBuildResult>();
        foreach (var arch in archs)
        {
            if (!IsSupported(arch))
            {
                var (major, minor) = KernelCompiler.NvrtcVersion();
                var error = $"NVRTC {major}.{minor} cannot target {arch}; it supports {string.Join(", ", Nvrtc.SupportedArchs().Select(a => $"sm_{a}"))}";
                results.AddRange(KernelSources.Kernels.Select(k => new KernelBuildResult(k.FileName, arch, false, 0, false, [], error, "")));
                continue;
            }
            foreach (var source in KernelSources.Kernels)
            {
                try
                {
                    var compiled = compiler.Compile(source, new KernelCompileOptions(arch, lineInfo));
                    results.Add(new KernelBuildResult(source.FileName, arch, true, compiled.Image.Length, compiled.FromCache, compiled.Functions, null, compiled.Log));
                }
                catch (KernelCompileException e)
                {
                    results.Add(new KernelBuildResult(source.FileName, arch, false, 0, false, [], e.Message, e.Log));
                }
            }
        }
        return results;
    }

    /// <summary>
    /// False when this NVRTC cannot compile for <paramref name="arch"/> (e.g. NVRTC 13 dropped sm_70);
    /// true for names it cannot judge, which NVRTC itself then rejects with its own message.
    /// </summary>
    public static bool IsSupported(string arch)
    {
        var digits = new string(arch.SkipWhile(c => !char.IsDigit(c)).TakeWhile(char.IsDigit).ToArray());
        if (!(arch.StartsWith("sm_", StringComparison.Ordinal) || arch.StartsWith("compute_", StringComparison.Ordinal)) || !int.TryParse(digits, out var number))
            return true;
        // The kernels use tensor-core mma and other sm_70 features: older targets cannot compile them.
        if (number < MinimumArch)
            return false;
        // NVRTC lists plain sm_XY numbers; the architecture-specific variants (sm_90a) came with CUDA 12.0.
        if (IsArchSpecific(arch) && KernelCompiler.NvrtcVersion().Major < 12)
            return false;
        return KernelCompiler.SupportedArchsOrNull()?.Contains(number) ?? true;
    }

    /// <summary>sm_90a, compute_90a: code that runs on that architecture only (wgmma, setmaxnreg).</summary>
    /// <summary>The oldest architecture the kernels compile for (Volta).</summary>
    public const int MinimumArch = 70;

    public static bool IsArchSpecific(string arch) => arch.EndsWith('a') && char.IsDigit(arch[^2]);
}
