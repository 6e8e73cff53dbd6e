using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>The CUDA backend for tests that compare it with the CPU (op checks, forward passes).</summary>
internal static class BackendPair
{
    /// <summary>The CUDA backend on device 0, or a skip naming what is missing (a failure with TOME_REQUIRE_GPU=1).</summary>
    public static CudaBackend CreateGpu()
    {
        GpuRequirement.RequireDevice();
        NvrtcRequirement.Require();
        if (!CudaLibraries.TryLoad(CudaLibrary.Cublas, out _, out var tried))
            GpuRequirement.SkipOrFail("cuBLAS not found; tried:\n  " + string.Join("\n  ", tried));
        return new CudaBackend();
    }
}
