using System.Runtime.InteropServices;

namespace ToMe.Backends.Cuda.Native;

// Driver API handles: CUcontext, CUstream, CUevent, CUmodule, CUfunction, CUgraph, CUgraphExec and
// CUmemoryPool are opaque pointers (nint); CUdeviceptr is an unsigned 64-bit address (ulong);
// CUdevice is an int ordinal.

/// <summary>CUdevice_attribute values the engine reads (cuda.h).</summary>
internal enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    ClockRate = 13,
    MultiprocessorCount = 16,
    MemoryClockRate = 36,
    GlobalMemoryBusWidth = 37,
    L2CacheSize = 38,
    MaxThreadsPerMultiprocessor = 39,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerMultiprocessor = 81,
    MaxSharedMemoryPerBlockOptin = 97,
    MemoryPoolsSupported = 115,
}

/// <summary>CUfunction_attribute values (cuda.h).</summary>
internal enum CuFunctionAttribute
{
    MaxThreadsPerBlock = 0,
    SharedSizeBytes = 1,
    ConstSizeBytes = 2,
    LocalSizeBytes = 3,
    NumRegs = 4,
    PtxVersion = 5,
    BinaryVersion = 6,
    MaxDynamicSharedSizeBytes = 8,
}

/// <summary>CUstreamCaptureMode (cuda.h).</summary>
internal enum CuStreamCaptureMode
{
    Global = 0,
    ThreadLocal = 1,
    Relaxed = 2,
}

/// <summary>CUstreamCaptureStatus (cuda.h).</summary>
internal enum CuStreamCaptureStatus
{
    None = 0,
    Active = 1,
    Invalidated = 2,
}

/// <summary>CUmemPool_attribute values (cuda.h).</summary>
internal enum CuMemPoolAttribute
{
    ReleaseThreshold = 4,
    ReservedMemCurrent = 5,
    UsedMemCurrent = 7,
}

/// <summary>Flag values for streams, events and pinned host memory (cuda.h).</summary>
internal static class CuFlags
{
    public const uint StreamNonBlocking = 0x1;
    public const uint EventDefault = 0x0;
    public const uint EventBlockingSync = 0x1;
    public const uint EventDisableTiming = 0x2;
    public const uint MemHostAllocPortable = 0x1;
    public const uint MemHostAllocDeviceMap = 0x2;
    public const uint MemHostAllocWriteCombined = 0x4;
}

/// <summary>CUDA driver API bindings (libcuda.so.1 / nvcuda.dll); the versioned <c>_v2</c> entry points where cuda.h maps to them.</summary>
internal static unsafe partial class CuDriver
{
    private const string Lib = CudaLibraries.DriverName;

    static CuDriver() => CudaLibraries.EnsureResolver();

    // Initialization, version, errors
    [LibraryImport(Lib)] public static partial CuResult cuInit(uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuDriverGetVersion(out int version);
    [LibraryImport(Lib)] public static partial CuResult cuGetErrorName(CuResult error, byte** name);
    [LibraryImport(Lib)] public static partial CuResult cuGetErrorString(CuResult error, byte** text);

    // Devices
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetAttribute(out int value, CuDeviceAttribute attribute, int device);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceTotalMem_v2(out nuint bytes, int device);

    // Primary context
    [LibraryImport(Lib)] public static partial CuResult cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Lib)] public static partial CuResult cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Lib)] public static partial CuResult cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] public static partial CuResult cuCtxGetCurrent(out nint context);
    [LibraryImport(Lib)] public static partial CuResult cuCtxSynchronize();

    // Device memory
    [LibraryImport(Lib)] public static partial CuResult cuMemAlloc_v2(out ulong pointer, nuint bytes);
    [LibraryImport(Lib)] public static partial CuResult cuMemFree_v2(ulong pointer);
    [LibraryImport(Lib)] public static partial CuResult cuMemGetInfo_v2(out nuint free, out nuint total);
    [LibraryImport(Lib)] public static partial CuResult cuMemAllocAsync(out ulong pointer, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemFreeAsync(ulong pointer, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetDefaultMemPool(out nint pool, int device);
    [LibraryImport(Lib)] public static partial CuResult cuMemPoolSetAttribute(nint pool, CuMemPoolAttribute attribute, void* value);
    [LibraryImport(Lib)] public static partial CuResult cuMemPoolGetAttribute(nint pool, CuMemPoolAttribute attribute, void* value);
    [LibraryImport(Lib)] public static partial CuResult cuMemPoolTrimTo(nint pool, nuint minBytesToKeep);

    // Pinned host memory
    [LibraryImport(Lib)] public static partial CuResult cuMemHostAlloc(out nint pointer, nuint bytes, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuMemFreeHost(nint pointer);

    // Copies and fills: stream-ordered only (see DeviceBuffer<T>)
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD8Async(ulong destination, byte value, nuint count, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD32Async(ulong destination, uint value, nuint count, nint stream);

    // Streams
    [LibraryImport(Lib)] public static partial CuResult cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuStreamDestroy_v2(nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuStreamSynchronize(nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuStreamWaitEvent(nint stream, nint @event, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuStreamIsCapturing(nint stream, out CuStreamCaptureStatus status);

    // Events
    [LibraryImport(Lib)] public static partial CuResult cuEventCreate(out nint @event, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuEventDestroy_v2(nint @event);
    [LibraryImport(Lib)] public static partial CuResult cuEventRecord(nint @event, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuEventSynchronize(nint @event);
    [LibraryImport(Lib)] public static partial CuResult cuEventQuery(nint @event);
    [LibraryImport(Lib)] public static partial CuResult cuEventElapsedTime(out float milliseconds, nint start, nint end);

    // Modules and launches
    [LibraryImport(Lib)] public static partial CuResult cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib)] public static partial CuResult cuModuleUnload(nint module);
    [LibraryImport(Lib)] public static partial CuResult cuModuleGetFunction(out nint function, nint module, byte* name);
    [LibraryImport(Lib)] public static partial CuResult cuFuncGetAttribute(out int value, CuFunctionAttribute attribute, nint function);
    [LibraryImport(Lib)] public static partial CuResult cuFuncSetAttribute(nint function, CuFunctionAttribute attribute, int value);

    [LibraryImport(Lib)]
    public static partial CuResult cuLaunchKernel(
        nint function,
        uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream,
        void** kernelParameters, void** extra);

    // Graphs
    [LibraryImport(Lib)] public static partial CuResult cuStreamBeginCapture_v2(nint stream, CuStreamCaptureMode mode);
    [LibraryImport(Lib)] public static partial CuResult cuStreamEndCapture(nint stream, out nint graph);
    [LibraryImport(Lib)] public static partial CuResult cuGraphInstantiateWithFlags(out nint graphExec, nint graph, ulong flags);
    [LibraryImport(Lib)] public static partial CuResult cuGraphLaunch(nint graphExec, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuGraphExecDestroy(nint graphExec);
    [LibraryImport(Lib)] public static partial CuResult cuGraphDestroy(nint graph);
}
