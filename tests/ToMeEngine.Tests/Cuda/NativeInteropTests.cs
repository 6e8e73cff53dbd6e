using ToMe.Backends.Cuda.Native;

namespace ToMe.Tests.Cuda;

public class NativeInteropTests
{
    [Fact]
    public void FailedProbeListsEveryPathTried()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(Path.Combine(dir.Path, "libtome_fake.so.2"), "not a shared library");
        var missingDir = Path.Combine(dir.Path, "missing");

        var result = CudaLibraries.Probe(["libtome_fake.so.3", "libtome_fake.so.2"], [dir.Path, missingDir]);

        Assert.Equal(IntPtr.Zero, result.Handle);
        Assert.Contains(result.Tried, t => t.StartsWith(Path.Combine(dir.Path, "libtome_fake.so.3"), StringComparison.Ordinal) && t.Contains("absent"));
        Assert.Contains(result.Tried, t => t.StartsWith(Path.Combine(dir.Path, "libtome_fake.so.2"), StringComparison.Ordinal) && t.Contains("failed to load"));
        Assert.Contains(result.Tried, t => t.StartsWith(missingDir, StringComparison.Ordinal) && t.Contains("no such directory"));
        Assert.Contains(result.Tried, t => t == "libtome_fake.so.3 (system loader)");

        var error = new CudaLibraryNotFoundException(CudaLibrary.Nvrtc, result.Tried);
        Assert.Contains("NVRTC", error.Message);
        Assert.Contains("TOME_CUDA_LIB_DIR", error.Message);
        foreach (var tried in result.Tried)
            Assert.Contains(tried, error.Message);
    }

    [Fact]
    public void OverrideDirectoriesComeFirstAndWheelFoldersAreSearched()
    {
        if (OperatingSystem.IsWindows())
            Assert.Skip("wheel layout checked on Linux");
        using var overrideDir = new TempDirectory();
        using var venv = new TempDirectory();
        var wheelLib = Path.Combine(venv.Path, "lib", "python3.12", "site-packages", "nvidia", "cuda_nvrtc", "lib");
        Directory.CreateDirectory(wheelLib);
        var savedOverride = Environment.GetEnvironmentVariable("TOME_CUDA_LIB_DIR");
        var savedVenv = Environment.GetEnvironmentVariable("VIRTUAL_ENV");
        try
        {
            Environment.SetEnvironmentVariable("TOME_CUDA_LIB_DIR", overrideDir.Path + Path.PathSeparator + "/opt/other");
            Environment.SetEnvironmentVariable("VIRTUAL_ENV", venv.Path);
            var dirs = CudaLibraries.SearchDirectories(CudaLibrary.Nvrtc);
            Assert.Equal(overrideDir.Path, dirs[0]);
            Assert.Equal("/opt/other", dirs[1]);
            Assert.Contains(wheelLib, dirs);
            Assert.Contains("/usr/local/cuda/lib64", dirs);
        }
        finally
        {
            Environment.SetEnvironmentVariable("TOME_CUDA_LIB_DIR", savedOverride);
            Environment.SetEnvironmentVariable("VIRTUAL_ENV", savedVenv);
        }
    }

    [Fact]
    public void CandidateNamesCoverCuda11To13()
    {
        var nvrtc = CudaLibraries.FileNames(CudaLibrary.Nvrtc);
        var cublas = CudaLibraries.FileNames(CudaLibrary.Cublas);
        if (OperatingSystem.IsWindows())
        {
            Assert.Equal(["nvcuda.dll"], CudaLibraries.FileNames(CudaLibrary.Driver));
            Assert.Contains("nvrtc64_112_0.dll", nvrtc);
        }
        else
        {
            Assert.Equal("libcuda.so.1", CudaLibraries.FileNames(CudaLibrary.Driver)[0]);
            Assert.Equal(["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"], nvrtc.Take(3));
            Assert.Equal(["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"], cublas.Take(3));
            Assert.Equal("libcublasLt.so.13", CudaLibraries.FileNames(CudaLibrary.CublasLt)[0]);
        }
    }

    private static CuResult PretendAllocation(long bytes) => bytes > 0 ? CuResult.ErrorOutOfMemory : CuResult.Success;

    [Fact]
    public void DriverStatusCheckNamesErrorAndExpression()
    {
        Cu.Check(PretendAllocation(0));
        var error = Assert.Throws<CudaException>(() => Cu.Check(PretendAllocation(1L << 40)));
        Assert.Equal(CudaApi.Driver, error.Api);
        Assert.Equal(2, error.Status);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", error.StatusName);
        Assert.Equal("PretendAllocation(1L << 40)", error.Expression);
        Assert.Contains("CUDA_ERROR_OUT_OF_MEMORY", error.Message);
        Assert.Contains("PretendAllocation(1L << 40)", error.Message);
    }

    [Fact]
    public void NvrtcAndCublasStatusChecksNameExpression()
    {
        var nvrtc = Assert.Throws<CudaException>(() => NvrtcCheck.Check(NvrtcResult.InvalidOption));
        Assert.Equal("NVRTC_ERROR_INVALID_OPTION", nvrtc.StatusName);
        Assert.Equal("NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION", NvrtcCheck.Name(NvrtcResult.NoLoweredNamesBeforeCompilation));
        Assert.Contains("NvrtcResult.InvalidOption", nvrtc.Message);

        var cublas = Assert.Throws<CudaException>(() => CublasCheck.Check(CublasStatus.NotSupported));
        Assert.Equal("CUBLAS_STATUS_NOT_SUPPORTED", cublas.StatusName);
        Assert.Contains("CublasStatus.NotSupported", cublas.Message);
    }

    [Fact]
    public void HeuristicResultMatchesCLayout()
    {
        // cublasLtMatmulHeuristicResult_t: algo (64 bytes), size_t, status, float, int[4].
        Assert.Equal(96, System.Runtime.CompilerServices.Unsafe.SizeOf<CublasLtHeuristicResult>());
        Assert.Equal(64, System.Runtime.CompilerServices.Unsafe.SizeOf<CublasLtMatmulAlgo>());
    }
}

public class NvrtcBindingTests
{
    [Fact]
    public void VersionAndSupportedArchitectures()
    {
        NvrtcRequirement.Require();
        var (major, _) = Nvrtc.Version();
        Assert.InRange(major, 11, 13);
        var archs = Nvrtc.SupportedArchs();
        if (major < 13)
            Assert.Contains(70, archs);
        Assert.Contains(86, archs);
        Assert.Contains(90, archs);
    }
}
