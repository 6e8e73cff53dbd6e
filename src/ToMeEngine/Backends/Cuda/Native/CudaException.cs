using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cuda.Native;

/// <summary>Which CUDA library returned the failing status.</summary>
public enum CudaApi
{
    /// <summary>The CUDA driver API (<c>cu*</c>: contexts, memory, kernel launches); <see cref="CudaException.Status"/> is a <c>CUresult</c>.</summary>
    Driver,

    /// <summary>NVRTC, the runtime compiler of the engine's kernels; the status is an <c>nvrtcResult</c>.</summary>
    Nvrtc,

    /// <summary>cuBLAS (the Linear layers' matrix products in fp32 and tf32); the status is a <c>cublasStatus_t</c>.</summary>
    Cublas,

    /// <summary>cuBLASLt (the Linear layers in bf16 and fp16, with fused epilogues); the status is a <c>cublasStatus_t</c>.</summary>
    CublasLt,
}

/// <summary>
/// A CUDA driver, NVRTC or cuBLAS call returned an error status. The message names the library, the status and the call;
/// <see cref="CudaOutOfMemoryException"/> and <see cref="CudaContextLostException"/> restate the two failures an engine
/// recovers from (or must be rebuilt after) in the engine's terms.
/// </summary>
public class CudaException : Exception
{
    internal CudaException(CudaApi api, int status, string statusName, string description, string expression, string? detail = null)
        : base(FormatMessage(api, status, statusName, description, expression, detail))
    {
        Api = api;
        Status = status;
        StatusName = statusName;
        Expression = expression;
    }

    /// <summary>For errors that restate a failed call in the engine's terms (<see cref="CudaOutOfMemoryException"/>, <see cref="CudaContextLostException"/>).</summary>
    private protected CudaException(string message, CudaException cause) : base(message, cause)
    {
        Api = cause.Api;
        Status = cause.Status;
        StatusName = cause.StatusName;
        Expression = cause.Expression;
    }

    /// <summary>The library whose call failed; it says how to read <see cref="Status"/>.</summary>
    public CudaApi Api { get; }

    /// <summary>The numeric status (CUresult, nvrtcResult or cublasStatus_t).</summary>
    public int Status { get; }

    /// <summary>The status's symbolic name, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public string StatusName { get; }

    /// <summary>The source text of the failing call.</summary>
    public string Expression { get; }

    private static string FormatMessage(CudaApi api, int status, string statusName, string description, string expression, string? detail)
    {
        var message = $"{api} call failed: {statusName} ({status}): {description}\n  in: {expression}";
        return detail is null ? message : message + "\n" + detail;
    }
}

/// <summary>NVRTC could not compile a kernel file; carries the file name and the full compile log.</summary>
public sealed class KernelCompileException : CudaException
{
    internal KernelCompileException(string fileName, string arch, int status, string statusName, string log, string expression)
        : base(CudaApi.Nvrtc, status, statusName, $"compiling {fileName} for {arch}", expression, $"NVRTC log for {fileName} ({arch}):\n{log}")
    {
        FileName = fileName;
        Arch = arch;
        Log = log;
    }

    /// <summary>The kernel source file that failed, e.g. <c>attention.cu</c>.</summary>
    public string FileName { get; }

    /// <summary>The architecture it was compiled for, e.g. <c>sm_86</c>.</summary>
    public string Arch { get; }

    /// <summary>NVRTC's full compile log (the compiler's errors and warnings).</summary>
    public string Log { get; }
}

/// <summary>Driver API status codes the engine treats specially; every other value is reported through <c>cuGetErrorName</c>.</summary>
internal enum CuResult
{
    Success = 0,
    ErrorInvalidValue = 1,
    ErrorOutOfMemory = 2,
    ErrorNotInitialized = 3,
    ErrorDeinitialized = 4,
    ErrorStubLibrary = 34,
    ErrorInsufficientDriver = 35,
    ErrorNoDevice = 100,
    ErrorInvalidDevice = 101,
    ErrorInvalidImage = 200,
    ErrorInvalidContext = 201,
    ErrorNoBinaryForGpu = 209,
    ErrorUnsupportedPtxVersion = 222,
    ErrorNotFound = 500,
    ErrorNotReady = 600,
    ErrorIllegalAddress = 700,
    ErrorLaunchOutOfResources = 701,
    ErrorLaunchFailed = 719,
    ErrorStreamCaptureUnsupported = 900,
    ErrorStreamCaptureInvalidated = 901,
}

/// <summary>Status checks for driver API calls: <c>Cu.Check(CuDriver.cuMemAlloc(...))</c>.</summary>
internal static class Cu
{
    public static void Check(CuResult result, [CallerArgumentExpression(nameof(result))] string expression = "")
    {
        if (result != CuResult.Success)
            throw Error(result, expression);
    }

    public static CudaException Error(CuResult result, string expression)
    {
        var (name, description) = Describe(result);
        return new CudaException(CudaApi.Driver, (int)result, name, description, expression);
    }

    /// <summary>The error's name and text from the driver, falling back to the enum name when the driver cannot say.</summary>
    public static unsafe (string Name, string Description) Describe(CuResult result)
    {
        string? name = null, description = null;
        try
        {
            byte* text;
            if (CuDriver.cuGetErrorName(result, &text) == CuResult.Success && text != null)
                name = new string((sbyte*)text);
            if (CuDriver.cuGetErrorString(result, &text) == CuResult.Success && text != null)
                description = new string((sbyte*)text);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CudaLibraryNotFoundException)
        {
        }
        name ??= Enum.IsDefined(result) ? "CUDA_" + SnakeUpper(result.ToString()) : "CUDA_ERROR_UNKNOWN_CODE";
        return (name, description ?? "(no description from the driver)");
    }

    // ErrorOutOfMemory -> ERROR_OUT_OF_MEMORY, the spelling cuda.h uses.
    internal static string SnakeUpper(string pascal)
    {
        var text = new System.Text.StringBuilder();
        foreach (var c in pascal)
        {
            if (char.IsUpper(c) && text.Length > 0)
                text.Append('_');
            text.Append(char.ToUpperInvariant(c));
        }
        return text.ToString();
    }
}

/// <summary>Status checks for NVRTC calls.</summary>
internal static class NvrtcCheck
{
    public static void Check(NvrtcResult result, [CallerArgumentExpression(nameof(result))] string expression = "")
    {
        if (result != NvrtcResult.Success)
            throw new CudaException(CudaApi.Nvrtc, (int)result, Name(result), Nvrtc.ErrorString(result), expression);
    }

    /// <summary>The nvrtc.h spelling, e.g. <c>NVRTC_ERROR_INVALID_OPTION</c>.</summary>
    public static string Name(NvrtcResult result) =>
        result == NvrtcResult.Success ? "NVRTC_SUCCESS" : "NVRTC_ERROR_" + Cu.SnakeUpper(result.ToString());
}

/// <summary>Status checks for cuBLAS and cuBLASLt calls.</summary>
internal static class CublasCheck
{
    public static void Check(CublasStatus status, [CallerArgumentExpression(nameof(status))] string expression = "")
    {
        if (status != CublasStatus.Success)
            throw new CudaException(CudaApi.Cublas, (int)status, Name(status), Describe(status), expression, EmulatorDetail());
    }

    public static void CheckLt(CublasStatus status, [CallerArgumentExpression(nameof(status))] string expression = "")
    {
        if (status != CublasStatus.Success)
            throw new CudaException(CudaApi.CublasLt, (int)status, Name(status), Describe(status), expression, EmulatorDetail());
    }

    /// <summary>The emulated CUDA device's explanation of the last cuBLAS(Lt) failure on this thread; null on a real GPU.</summary>
    private static unsafe string? EmulatorDetail()
    {
        if (!CudaLibraries.TryLoad(CudaLibrary.Cublas, out _, out _)
            || !System.Runtime.InteropServices.NativeLibrary.TryGetExport(CudaLibraries.Require(CudaLibrary.Cublas), "tomeEmuLastBlasError", out var last))
            return null;
        var text = ((delegate* unmanaged<byte*>)last)();
        return text == null || *text == 0 ? null : "emulated CUDA device: " + new string((sbyte*)text);
    }

    public static string Name(CublasStatus status) => status switch
    {
        CublasStatus.Success => "CUBLAS_STATUS_SUCCESS",
        CublasStatus.NotInitialized => "CUBLAS_STATUS_NOT_INITIALIZED",
        CublasStatus.AllocFailed => "CUBLAS_STATUS_ALLOC_FAILED",
        CublasStatus.InvalidValue => "CUBLAS_STATUS_INVALID_VALUE",
        CublasStatus.ArchMismatch => "CUBLAS_STATUS_ARCH_MISMATCH",
        CublasStatus.MappingError => "CUBLAS_STATUS_MAPPING_ERROR",
        CublasStatus.ExecutionFailed => "CUBLAS_STATUS_EXECUTION_FAILED",
        CublasStatus.InternalError => "CUBLAS_STATUS_INTERNAL_ERROR",
        CublasStatus.NotSupported => "CUBLAS_STATUS_NOT_SUPPORTED",
        CublasStatus.LicenseError => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => "CUBLAS_STATUS_UNKNOWN",
    };

    private static string Describe(CublasStatus status) => status switch
    {
        CublasStatus.NotInitialized => "the library was not initialized",
        CublasStatus.AllocFailed => "resource allocation failed",
        CublasStatus.InvalidValue => "an unsupported value or parameter was passed",
        CublasStatus.ArchMismatch => "the device lacks a feature this call needs",
        CublasStatus.ExecutionFailed => "the GPU program failed to execute",
        CublasStatus.NotSupported => "the requested functionality is not supported",
        _ => "see the cuBLAS status documentation",
    };
}
