using ToMe.Backends.Cuda.Native;

namespace ToMe.Tests.Cuda;

/// <summary>
/// Kernel compilation tests need NVRTC, which CI installs (Debian's libnvrtc11.2). Its absence fails
/// the test, so a broken install cannot pass silently; <c>TOME_ALLOW_NO_NVRTC=1</c> turns that into a skip.
/// </summary>
internal static class NvrtcRequirement
{
    public static void Require()
    {
        if (CudaLibraries.TryLoad(CudaLibrary.Nvrtc, out _, out var tried))
            return;
        var reason = "NVRTC could not be loaded; tried:\n  " + string.Join("\n  ", tried);
        if (Environment.GetEnvironmentVariable("TOME_ALLOW_NO_NVRTC") is "1" or "true")
            Assert.Skip(reason);
        Assert.Fail(reason + "\n(install libnvrtc, point TOME_CUDA_LIB_DIR at it, or set TOME_ALLOW_NO_NVRTC=1)");
    }

    /// <summary>Skips where the loaded NVRTC cannot target <paramref name="arch"/> (NVRTC 13 dropped sm_70 and sm_72).</summary>
    public static void RequireArch(string arch)
    {
        if (!ToMe.Backends.Cuda.Kernels.KernelBuildReport.IsSupported(arch))
            Assert.Skip($"NVRTC {Nvrtc.Version()} cannot target {arch}");
    }
}

/// <summary>A fresh directory under the temp folder, deleted at Dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tome-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
