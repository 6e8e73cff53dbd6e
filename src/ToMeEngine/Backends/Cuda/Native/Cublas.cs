using System.Runtime.InteropServices;

namespace ToMe.Backends.Cuda.Native;

/// <summary>cublasStatus_t (cublas_api.h).</summary>
internal enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

/// <summary>cublasOperation_t.</summary>
internal enum CublasOperation
{
    N = 0,
    T = 1,
    C = 2,
}

/// <summary>cudaDataType_t (library_types.h) values the engine uses.</summary>
internal enum CudaDataType
{
    R32F = 0,
    R64F = 1,
    R16F = 2,
    R8I = 3,
    R32I = 10,
    R16BF = 14,
}

/// <summary>cublasComputeType_t (cublas_api.h).</summary>
internal enum CublasComputeType
{
    Compute16F = 64,
    Compute16FPedantic = 65,
    Compute32F = 68,
    Compute32FPedantic = 69,
    Compute32FFast16F = 74,
    Compute32FFast16BF = 75,
    Compute32FFastTF32 = 77,
    Compute64F = 70,
    Compute32I = 72,
}

/// <summary>cublasMath_t.</summary>
internal enum CublasMath
{
    Default = 0,
    Pedantic = 2,
    TF32TensorOp = 3,
    DisallowReducedPrecisionReduction = 16,
}

/// <summary>cublasGemmAlgo_t values the engine uses.</summary>
internal enum CublasGemmAlgo
{
    Default = -1,
    DefaultTensorOp = 99,
}

/// <summary>libraryPropertyType (library_types.h).</summary>
internal enum LibraryProperty
{
    MajorVersion = 0,
    MinorVersion = 1,
    PatchLevel = 2,
}

/// <summary>cuBLAS bindings (libcublas.so.13|12|11 / cublas64_*). cublasHandle_t is an opaque pointer.</summary>
internal static unsafe partial class Cublas
{
    private const string Lib = CudaLibraries.CublasName;

    static Cublas() => CudaLibraries.EnsureResolver();

    [LibraryImport(Lib)] public static partial CublasStatus cublasGetProperty(LibraryProperty type, out int value);
    [LibraryImport(Lib)] public static partial CublasStatus cublasCreate_v2(out nint handle);
    [LibraryImport(Lib)] public static partial CublasStatus cublasDestroy_v2(nint handle);
    [LibraryImport(Lib)] public static partial CublasStatus cublasSetStream_v2(nint handle, nint stream);
    [LibraryImport(Lib)] public static partial CublasStatus cublasSetWorkspace_v2(nint handle, ulong workspace, nuint workspaceBytes);
    [LibraryImport(Lib)] public static partial CublasStatus cublasSetMathMode(nint handle, CublasMath mode);

    // C[i] = alpha * op(A[i]) op(B[i]) + beta * C[i], column-major, alpha/beta on the host.
    [LibraryImport(Lib)]
    public static partial CublasStatus cublasGemmStridedBatchedEx(
        nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        void* alpha,
        ulong a, CudaDataType aType, int lda, long strideA,
        ulong b, CudaDataType bType, int ldb, long strideB,
        void* beta,
        ulong c, CudaDataType cType, int ldc, long strideC,
        int batchCount, CublasComputeType computeType, CublasGemmAlgo algo);

    /// <summary>The loaded cuBLAS's version as (major, minor, patch).</summary>
    public static (int Major, int Minor, int Patch) Version()
    {
        CudaLibraries.Require(CudaLibrary.Cublas);
        CublasCheck.Check(cublasGetProperty(LibraryProperty.MajorVersion, out var major));
        CublasCheck.Check(cublasGetProperty(LibraryProperty.MinorVersion, out var minor));
        CublasCheck.Check(cublasGetProperty(LibraryProperty.PatchLevel, out var patch));
        return (major, minor, patch);
    }
}
