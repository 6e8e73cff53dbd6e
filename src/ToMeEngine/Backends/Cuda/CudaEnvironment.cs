using ToMe.Backends.Cuda.Kernels;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>Whether one CUDA library was found, where, its version, and every path tried.</summary>
internal sealed record CudaLibraryStatus(string Name, bool Found, string? Path, string? Version, IReadOnlyList<string> Tried, string? Error);

/// <summary>What CUDA this process can use: the libraries found and, with a driver, the devices.</summary>
internal sealed record CudaEnvironmentInfo(
    CudaLibraryStatus Driver,
    CudaLibraryStatus Nvrtc,
    CudaLibraryStatus Cublas,
    CudaLibraryStatus CublasLt,
    IReadOnlyList<CudaDeviceInfo> Devices,
    string? DeviceError)
{
    /// <summary>True when the driver loaded, initialized and reports at least one device.</summary>
    public bool HasDevice => Driver.Found && DeviceError is null && Devices.Count > 0;
}

/// <summary>Probes the CUDA libraries and devices without throwing (for <c>tome devices</c> and diagnostics).</summary>
internal static class CudaEnvironment
{
    public static CudaEnvironmentInfo Probe()
    {
        var driver = Library(CudaLibrary.Driver, () =>
        {
            var (major, minor) = CudaDriver.Version();
            return $"{major}.{minor}";
        });
        var nvrtc = Library(CudaLibrary.Nvrtc, () =>
        {
            var (major, minor) = KernelCompiler.NvrtcVersion();
            return $"{major}.{minor}";
        });
        var cublas = Library(CudaLibrary.Cublas, () =>
        {
            var (major, minor, patch) = Native.Cublas.Version();
            return $"{major}.{minor}.{patch}";
        });
        var cublasLt = Library(CudaLibrary.CublasLt, () =>
        {
            var (major, minor, patch) = Native.CublasLt.Version();
            return $"{major}.{minor}.{patch}";
        });

        IReadOnlyList<CudaDeviceInfo> devices = [];
        string? deviceError = null;
        if (driver.Found)
        {
            try
            {
                devices = CudaDriver.Devices();
                if (devices.Count == 0)
                    deviceError = "the CUDA driver reports no devices";
            }
            catch (CudaException e)
            {
                deviceError = e.Message;
            }
        }
        else
        {
            deviceError = driver.Error;
        }
        return new CudaEnvironmentInfo(driver, nvrtc, cublas, cublasLt, devices, deviceError);
    }

    private static CudaLibraryStatus Library(CudaLibrary library, Func<string> version)
    {
        var name = CudaLibraryNotFoundException.Describe(library);
        if (!CudaLibraries.TryLoad(library, out var path, out var tried))
            return new CudaLibraryStatus(name, false, null, null, tried, $"no {name} library found");
        try
        {
            return new CudaLibraryStatus(name, true, path, version(), tried, null);
        }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException)
        {
            return new CudaLibraryStatus(name, true, path, null, tried, e.Message);
        }
    }
}
