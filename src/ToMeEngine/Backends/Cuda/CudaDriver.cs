using System.Runtime.InteropServices;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>What a CUDA device reports about itself.</summary>
internal sealed record CudaDeviceInfo(
    int Ordinal,
    string Name,
    int ComputeMajor,
    int ComputeMinor,
    int MultiprocessorCount,
    long TotalMemoryBytes,
    int L2CacheBytes,
    int MaxSharedMemoryPerBlockOptin,
    int ClockRateKHz,
    int MemoryClockRateKHz,
    int MemoryBusWidthBits,
    bool MemoryPoolsSupported)
{
    /// <summary>The NVRTC architecture name for this device, e.g. <c>sm_86</c>.</summary>
    public string Arch => $"sm_{ComputeMajor}{ComputeMinor}";

    /// <summary>True for the emulated CUDA device (emulator/): a test device that runs kernels on the CPU, never a GPU.</summary>
    public bool IsEmulated { get; init; }
}

/// <summary>Loads and initializes the driver once per process; enumerates devices.</summary>
internal static class CudaDriver
{
    private static readonly object gate = new();
    private static bool initialized;

    /// <summary>Loads the driver library and calls <c>cuInit</c>; throws when there is no driver or no device.</summary>
    public static void Initialize()
    {
        lock (gate)
        {
            if (initialized)
                return;
            CudaLibraries.Require(CudaLibrary.Driver);
            Cu.Check(CuDriver.cuInit(0));
            initialized = true;
        }
    }

    /// <summary>True when the driver loads and reports at least one device; <paramref name="reason"/> says why not.</summary>
    public static bool TryInitialize(out string reason)
    {
        try
        {
            Initialize();
            Cu.Check(CuDriver.cuDeviceGetCount(out var count));
            reason = count == 0 ? "the CUDA driver reports no devices" : "";
            return count > 0;
        }
        catch (CudaLibraryNotFoundException e)
        {
            reason = e.Message;
            return false;
        }
        catch (CudaException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>
    /// What the emulated CUDA device says about itself when the loaded driver is the emulator (emulator/, found like any
    /// driver through the library resolver), else null. A test device: <c>--backend auto</c> never picks it.
    /// </summary>
    public static string? EmulatorDescription => emulatorDescription.Value;

    /// <summary>True when the loaded driver is the emulated CUDA device.</summary>
    public static bool IsEmulated => EmulatorDescription is not null;

    private static readonly Lazy<string?> emulatorDescription = new(DescribeEmulator);

    private static unsafe string? DescribeEmulator()
    {
        if (!CudaLibraries.TryLoad(CudaLibrary.Driver, out _, out _)
            || !NativeLibrary.TryGetExport(CudaLibraries.Require(CudaLibrary.Driver), "tomeEmuDescribe", out var describe))
            return null;
        var text = ((delegate* unmanaged<byte*>)describe)();
        return text == null ? "emulated CUDA device" : new string((sbyte*)text);
    }

    /// <summary>The driver's CUDA version as (major, minor), e.g. (12, 4).</summary>
    public static (int Major, int Minor) Version()
    {
        // Needs no cuInit, so it answers even where initialization fails (no device, driver too old).
        CudaLibraries.Require(CudaLibrary.Driver);
        Cu.Check(CuDriver.cuDriverGetVersion(out var version));
        return (version / 1000, version % 1000 / 10);
    }

    public static int DeviceCount()
    {
        Initialize();
        Cu.Check(CuDriver.cuDeviceGetCount(out var count));
        return count;
    }

    public static unsafe CudaDeviceInfo Device(int ordinal)
    {
        Initialize();
        Cu.Check(CuDriver.cuDeviceGet(out var device, ordinal));
        var name = stackalloc byte[256];
        Cu.Check(CuDriver.cuDeviceGetName(name, 256, device));
        Cu.Check(CuDriver.cuDeviceTotalMem_v2(out var totalBytes, device));
        int Attribute(CuDeviceAttribute attribute)
        {
            Cu.Check(CuDriver.cuDeviceGetAttribute(out var value, attribute, device), $"cuDeviceGetAttribute({attribute}, device {ordinal})");
            return value;
        }
        return new CudaDeviceInfo(
            ordinal,
            new string((sbyte*)name),
            Attribute(CuDeviceAttribute.ComputeCapabilityMajor),
            Attribute(CuDeviceAttribute.ComputeCapabilityMinor),
            Attribute(CuDeviceAttribute.MultiprocessorCount),
            (long)totalBytes,
            Attribute(CuDeviceAttribute.L2CacheSize),
            Attribute(CuDeviceAttribute.MaxSharedMemoryPerBlockOptin),
            Attribute(CuDeviceAttribute.ClockRate),
            Attribute(CuDeviceAttribute.MemoryClockRate),
            Attribute(CuDeviceAttribute.GlobalMemoryBusWidth),
            Attribute(CuDeviceAttribute.MemoryPoolsSupported) != 0)
        {
            IsEmulated = IsEmulated,
        };
    }

    /// <summary>Every device the driver reports.</summary>
    public static IReadOnlyList<CudaDeviceInfo> Devices() => Enumerable.Range(0, DeviceCount()).Select(Device).ToList();
}
