using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda.Kernels;

/// <summary>One kernel file compiled for one architecture: success, CUBIN size, per-function resources, or the failure's log.</summary>
public sealed record KernelBuildResult(
    string FileName,
    string Arch,
    bool Success,
    int CubinBytes,
    bool FromCache,
    IReadOnlyList<KernelResourceUsage> Functions,
    string? Error,
    string Log);

/// <summary>Compiles every embedded kernel file for every requested architecture (the <c>tome kernels compile</c> check).</summary>
public static class KernelBuildReport
{
    public static IReadOnlyList<KernelBuildResult> CompileAll(KernelCompiler compiler, IEnumerable<string> archs, bool lineInfo = false)
    {
        var results = new List<KernelBuildResult>();
        foreach (var arch in archs)
        {
            foreach (var source in KernelSources.Kernels)
            {
                try
                {
                    var compiled = compiler.Compile(source, new KernelCompileOptions(arch, lineInfo));
                    results.Add(new KernelBuildResult(source.FileName, arch, true, compiled.Cubin.Length, compiled.FromCache, compiled.Functions, null, compiled.Log));
                }
                catch (KernelCompileException e)
                {
                    results.Add(new KernelBuildResult(source.FileName, arch, false, 0, false, [], e.Message, e.Log));
                }
            }
        }
        return results;
    }
}
