using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Tests.Support;

/// <summary>
/// Which CUDA device the tests use. By default the emulated CUDA device (emulator/, which the test project builds when
/// g++ and make are present): the test process points the library resolver at emulator/build before anything loads, so
/// every CUDA test runs on a machine without a GPU, and <c>tome</c> child processes inherit the choice. With
/// <c>TOME_REQUIRE_GPU=1</c> the tests use the real driver instead and fail (never skip) without a GPU, also when the
/// driver found turns out to be the emulator. A <c>TOME_CUDA_LIB_DIR</c> set by the caller is left alone.
/// </summary>
internal static class EmulatedDevice
{
    private const string DriverFile = "libcuda.so.1";

    /// <summary>
    /// The emulator build in use: the one TOME_CUDA_LIB_DIR names (e.g. emulator/build-asan), else emulator/build of this
    /// checkout; null when it is not built (no g++ or make, or not Linux).
    /// </summary>
    public static string? BuildDirectory { get; } = FindBuild();

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "the device must be chosen before any CUDA library loads")]
    internal static void Select()
    {
        if (GpuRequirement.Required || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("TOME_CUDA_LIB_DIR")) || BuildDirectory is null)
            return;
        Environment.SetEnvironmentVariable("TOME_CUDA_LIB_DIR", BuildDirectory);
    }

    /// <summary>For tests of the emulator itself (its checks, planted bugs): skips unless the emulated device is loaded.</summary>
    public static void Require()
    {
        if (!CudaDriver.IsEmulated && GpuRequirement.EmulatorRequired && !GpuRequirement.Required)
            Assert.Fail("TOME_REQUIRE_EMULATOR is set but the emulated CUDA device is not loaded (is emulator/build built? make -C emulator)");
        if (!CudaDriver.IsEmulated)
            Assert.Skip(GpuRequirement.Required
                ? "tests the emulated CUDA device, and TOME_REQUIRE_GPU=1 selects the real GPU"
                : BuildDirectory is null ? "the emulated CUDA device is not built (needs g++ and make: make -C emulator)"
                                         : "the CUDA driver loaded is not the emulated device (TOME_CUDA_LIB_DIR points elsewhere)");
    }

    /// <summary>Modules this thread loads until disposal resolve their kernels in <paramref name="directory"/> (a planted-bug build).</summary>
    public static IDisposable UseKernels(string directory)
    {
        SetKernelDirectory(directory);
        return new Undo(() => SetKernelDirectory(null));
    }

    private static unsafe void SetKernelDirectory(string? directory)
    {
        var set = (delegate* unmanaged<byte*, void>)NativeLibrary.GetExport(CudaLibraries.Require(CudaLibrary.Driver), "tomeEmuSetKernelDirectory");
        if (directory is null)
        {
            set(null);
            return;
        }
        var bytes = System.Text.Encoding.UTF8.GetBytes(directory + "\0");
        fixed (byte* p = bytes)
            set(p);
    }

    /// <summary>Starts (or stops) logging the driver, cuBLAS and cuBLASLt entry points this thread calls, clearing the log.</summary>
    public static unsafe void LogCalls(bool enable)
    {
        var log = (delegate* unmanaged<int, void>)Export("tomeEmuLogCalls");
        log(enable ? 1 : 0);
    }

    /// <summary>The entry points this thread called since logging started or the last take, in order.</summary>
    public static unsafe string[] TakeCallLog()
    {
        var take = (delegate* unmanaged<byte*>)Export("tomeEmuTakeCallLog");
        return (Marshal.PtrToStringUTF8((nint)take()) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>
    /// Fails device allocations on this thread (<c>tomeEmuInjectAllocationFailure</c>): of the next allocations of at least
    /// <paramref name="minBytes"/>, <paramref name="skip"/> succeed, then <paramref name="count"/> fail with
    /// CUDA_ERROR_OUT_OF_MEMORY (−1: every one) until disposal.
    /// </summary>
    public static IDisposable FailAllocations(long skip, ulong minBytes = 0, long count = 1)
    {
        InjectAllocationFailure(skip, minBytes, count);
        return new Undo(() => InjectAllocationFailure(0, 0, 0));
    }

    /// <summary>The launch of <paramref name="kernel"/> on this thread after <paramref name="skip"/> such launches faults with an illegal address.</summary>
    public static IDisposable FaultLaunch(string kernel, long skip = 0)
    {
        SetLaunchFault(kernel, skip);
        return new Undo(() => SetLaunchFault(null, -1));
    }

    /// <summary>Until disposal, an illegal address loses the context as on a GPU (process-wide: for tests that run alone).</summary>
    public static IDisposable StickyErrors()
    {
        Call("tomeEmuSetStickyErrors", 1);
        return new Undo(() => Call("tomeEmuSetStickyErrors", 0));
    }

    /// <summary>Live device allocations and their bytes (not pinned host memory), process-wide.</summary>
    public static unsafe (long Allocations, long Bytes) DeviceMemory()
    {
        long allocations;
        ulong bytes;
        ((delegate* unmanaged<long*, ulong*, void>)Export("tomeEmuDeviceMemory"))(&allocations, &bytes);
        return (allocations, (long)bytes);
    }

    private static nint Export(string name) => NativeLibrary.GetExport(CudaLibraries.Require(CudaLibrary.Driver), name);

    private static unsafe void Call(string name, int value) => ((delegate* unmanaged<int, void>)Export(name))(value);

    private static unsafe void InjectAllocationFailure(long skip, ulong minBytes, long count) =>
        ((delegate* unmanaged<long, ulong, long, void>)Export("tomeEmuInjectAllocationFailure"))(skip, minBytes, count);

    private static unsafe void SetLaunchFault(string? kernel, long skip)
    {
        var set = (delegate* unmanaged<byte*, long, void>)Export("tomeEmuInjectLaunchFault");
        if (kernel is null)
        {
            set(null, skip);
            return;
        }
        var bytes = System.Text.Encoding.UTF8.GetBytes(kernel + "\0");
        fixed (byte* p = bytes)
            set(p, skip);
    }

    private sealed class Undo(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    private static string? FindBuild()
    {
        if (!OperatingSystem.IsLinux())
            return null;
        var named = Environment.GetEnvironmentVariable("TOME_CUDA_LIB_DIR");
        if (!string.IsNullOrEmpty(named) && File.Exists(Path.Combine(named, "libtome_cuda_emulator.so")))
            return Path.GetFullPath(named);
        if (RepoData.Root is not { } root)
            return null;
        var build = Path.Combine(root, "emulator", "build");
        return File.Exists(Path.Combine(build, DriverFile)) ? build : null;
    }
}
