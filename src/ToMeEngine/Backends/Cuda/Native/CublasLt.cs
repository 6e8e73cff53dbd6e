using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ToMe.Backends.Cuda.Native;

/// <summary>cublasLtMatmulDescAttributes_t values the engine sets (cublasLt.h).</summary>
internal enum CublasLtMatmulDescAttribute
{
    ComputeType = 0,
    ScaleType = 1,
    PointerMode = 2,
    TransA = 3,
    TransB = 4,
    TransC = 5,
    Epilogue = 7,
    BiasPointer = 8,
    BiasBatchStride = 10,
    BiasDataType = 26,
}

/// <summary>cublasLtMatrixLayoutAttribute_t (cublasLt.h).</summary>
internal enum CublasLtMatrixLayoutAttribute
{
    Type = 0,
    Order = 1,
    Rows = 2,
    Cols = 3,
    Ld = 4,
    BatchCount = 5,
    StridedBatchOffset = 6,
}

/// <summary>cublasLtMatmulPreferenceAttributes_t values the engine sets.</summary>
internal enum CublasLtPreferenceAttribute
{
    SearchMode = 0,
    MaxWorkspaceBytes = 1,
}

/// <summary>cublasLtEpilogue_t values the engine uses.</summary>
internal enum CublasLtEpilogue : uint
{
    Default = 1,
    Relu = 2,
    Bias = 4,
    ReluBias = 6,
    Gelu = 32,
    GeluBias = 36,
}

/// <summary>cublasLtMatmulAlgo_t: 8 opaque 64-bit words.</summary>
[InlineArray(8)]
internal struct CublasLtMatmulAlgo
{
    private ulong element;
}

/// <summary>cublasLtMatmulHeuristicResult_t (96 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CublasLtHeuristicResult
{
    public CublasLtMatmulAlgo Algo;
    public nuint WorkspaceSize;
    public CublasStatus State;
    public float WavesCount;
    public int Reserved0, Reserved1, Reserved2, Reserved3;
}

/// <summary>cuBLASLt bindings (libcublasLt.so.13|12|11 / cublasLt64_*). All handles and descriptors are opaque pointers.</summary>
internal static unsafe partial class CublasLt
{
    private const string Lib = CudaLibraries.CublasLtName;

    static CublasLt() => CudaLibraries.EnsureResolver();

    [LibraryImport(Lib)] public static partial CublasStatus cublasLtGetProperty(LibraryProperty type, out int value);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtCreate(out nint handle);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtDestroy(nint handle);

    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatmulDescCreate(out nint desc, CublasComputeType computeType, CudaDataType scaleType);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatmulDescDestroy(nint desc);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatmulDescSetAttribute(nint desc, CublasLtMatmulDescAttribute attribute, void* value, nuint size);

    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatrixLayoutCreate(out nint layout, CudaDataType type, ulong rows, ulong cols, long ld);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatrixLayoutDestroy(nint layout);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatrixLayoutSetAttribute(nint layout, CublasLtMatrixLayoutAttribute attribute, void* value, nuint size);

    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatmulPreferenceCreate(out nint preference);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatmulPreferenceDestroy(nint preference);
    [LibraryImport(Lib)] public static partial CublasStatus cublasLtMatmulPreferenceSetAttribute(nint preference, CublasLtPreferenceAttribute attribute, void* value, nuint size);

    [LibraryImport(Lib)]
    public static partial CublasStatus cublasLtMatmulAlgoGetHeuristic(
        nint handle, nint operationDesc, nint aDesc, nint bDesc, nint cDesc, nint dDesc, nint preference,
        int requestedAlgoCount, CublasLtHeuristicResult* results, out int returnedAlgoCount);

    // D = alpha * op(A) op(B) + beta * C (+ epilogue), alpha/beta on the host by default.
    [LibraryImport(Lib)]
    public static partial CublasStatus cublasLtMatmul(
        nint handle, nint computeDesc, void* alpha,
        ulong a, nint aDesc, ulong b, nint bDesc, void* beta,
        ulong c, nint cDesc, ulong d, nint dDesc,
        CublasLtMatmulAlgo* algo, ulong workspace, nuint workspaceBytes, nint stream);

    /// <summary>The loaded cuBLASLt's version as (major, minor, patch).</summary>
    public static (int Major, int Minor, int Patch) Version()
    {
        CudaLibraries.Require(CudaLibrary.CublasLt);
        CublasCheck.CheckLt(cublasLtGetProperty(LibraryProperty.MajorVersion, out var major));
        CublasCheck.CheckLt(cublasLtGetProperty(LibraryProperty.MinorVersion, out var minor));
        CublasCheck.CheckLt(cublasLtGetProperty(LibraryProperty.PatchLevel, out var patch));
        return (major, minor, patch);
    }
}
