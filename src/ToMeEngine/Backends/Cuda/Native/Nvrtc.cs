using System.Runtime.InteropServices;

namespace ToMe.Backends.Cuda.Native;

/// <summary>nvrtcResult (nvrtc.h).</summary>
internal enum NvrtcResult
{
    Success = 0,
    OutOfMemory = 1,
    ProgramCreationFailure = 2,
    InvalidInput = 3,
    InvalidProgram = 4,
    InvalidOption = 5,
    Compilation = 6,
    BuiltinOperationFailure = 7,
    NoNameExpressionsAfterCompilation = 8,
    NoLoweredNamesBeforeCompilation = 9,
    NameExpressionNotValid = 10,
    InternalError = 11,
}

/// <summary>NVRTC bindings (libnvrtc.so.13|12|11.2 / nvrtc64_*). nvrtcProgram is an opaque pointer.</summary>
internal static unsafe partial class Nvrtc
{
    private const string Lib = CudaLibraries.NvrtcName;

    static Nvrtc() => CudaLibraries.EnsureResolver();

    [LibraryImport(Lib)] public static partial byte* nvrtcGetErrorString(NvrtcResult result);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetNumSupportedArchs(out int count);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetSupportedArchs(int* archs);

    [LibraryImport(Lib)]
    public static partial NvrtcResult nvrtcCreateProgram(
        out nint program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);

    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcDestroyProgram(ref nint program);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcCompileProgram(nint program, int optionCount, byte** options);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetProgramLogSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetCUBINSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetCUBIN(nint program, byte* cubin);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetPTXSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcAddNameExpression(nint program, byte* nameExpression);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetLoweredName(nint program, byte* nameExpression, byte** loweredName);

    /// <summary>NVRTC's text for <paramref name="result"/>, or the enum name when NVRTC cannot be asked.</summary>
    public static string ErrorString(NvrtcResult result)
    {
        try
        {
            var text = nvrtcGetErrorString(result);
            return text == null ? result.ToString() : new string((sbyte*)text);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return result.ToString();
        }
    }

    /// <summary>The loaded NVRTC's (major, minor) version.</summary>
    public static (int Major, int Minor) Version()
    {
        CudaLibraries.Require(CudaLibrary.Nvrtc);
        NvrtcCheck.Check(nvrtcVersion(out var major, out var minor));
        return (major, minor);
    }

    /// <summary>The sm_XY numbers this NVRTC can compile for (e.g. 70, 86, 90).</summary>
    public static int[] SupportedArchs()
    {
        CudaLibraries.Require(CudaLibrary.Nvrtc);
        NvrtcCheck.Check(nvrtcGetNumSupportedArchs(out var count));
        var archs = new int[count];
        fixed (int* p = archs)
            NvrtcCheck.Check(nvrtcGetSupportedArchs(p));
        return archs;
    }
}
