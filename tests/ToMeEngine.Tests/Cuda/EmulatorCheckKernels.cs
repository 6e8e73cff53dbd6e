using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Kernels;
using ToMe.Backends.Cuda.Native;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The emulated device's check kernels (emulator/tests/kernels/emulator_checks.cu) on a stream of their own: compiled by
/// NVRTC like the engine's kernels, loaded with the emulator's build of them. Skips where the emulated device is not in use.
/// </summary>
internal sealed class EmulatorCheckKernels : IDisposable
{
    private static readonly Lazy<CompiledKernel> compiled = new(Compile);
    private readonly List<IDisposable> owned = [];

    public EmulatorCheckKernels()
    {
        EmulatedDevice.Require();
        Context = Gpu.Context();
        Stream = new CudaStream(Context);
        using (EmulatedDevice.UseKernels(Path.Combine(EmulatedDevice.BuildDirectory!, "test-kernels")))
            Module = new CudaModule(Context, compiled.Value.Image, "emulator_checks.cu");
    }

    public CudaContext Context { get; }
    public CudaStream Stream { get; }
    public CudaModule Module { get; }

    public CudaFunction this[string entryPoint] => Module.Function(entryPoint);

    /// <summary>Launches on <see cref="Stream"/> and waits, so an error in the kernel surfaces here.</summary>
    public void Run(string entryPoint, Dim3 grid, Dim3 block, KernelArgs args, uint sharedBytes = 0)
    {
        this[entryPoint].Launch(Stream, grid, block, sharedBytes, args);
        Stream.Synchronize();
    }

    /// <summary>The error <paramref name="entryPoint"/> ends with; the message must say <paramref name="expected"/>.</summary>
    public CudaException Fails(string entryPoint, Dim3 grid, Dim3 block, KernelArgs args, string expected, uint sharedBytes = 0)
    {
        var error = Assert.Throws<CudaException>(() => Run(entryPoint, grid, block, args, sharedBytes));
        Assert.Contains(expected, error.Message);
        return error;
    }

    /// <summary>Device memory holding <paramref name="values"/>, uploaded in order on <see cref="Stream"/>.</summary>
    public DeviceBuffer<T> Upload<T>(T[] values) where T : unmanaged
    {
        var buffer = Own(DeviceBuffer<T>.Allocate(Context, values.Length));
        StreamCopy.Upload(Stream, values, buffer.Pointer);
        return buffer;
    }

    public DeviceBuffer<T> Allocate<T>(int length) where T : unmanaged => Own(DeviceBuffer<T>.Allocate(Context, length));

    public T[] Download<T>(DeviceBuffer<T> buffer) where T : unmanaged
    {
        var values = new T[buffer.Length];
        StreamCopy.Download(Stream, buffer.Pointer, values.AsSpan());
        return values;
    }

    /// <summary>Launches this thread queues order their threads so (0 forward, 1 reverse, 2 random with <paramref name="seed"/>, −1 default).</summary>
    public static unsafe void SetThreadOrder(int order, ulong seed = 0)
    {
        var set = (delegate* unmanaged<int, ulong, void>)System.Runtime.InteropServices.NativeLibrary.GetExport(
            CudaLibraries.Require(CudaLibrary.Driver), "tomeEmuSetThreadOrder");
        set(order, seed);
    }

    private T Own<T>(T resource) where T : IDisposable
    {
        owned.Add(resource);
        return resource;
    }

    private static CompiledKernel Compile()
    {
        var path = Path.Combine(EmulatedDevice.BuildDirectory!, "..", "tests", "kernels", "emulator_checks.cu");
        var source = new KernelSource("emulator_checks.cu", File.ReadAllText(path));
        return new KernelCompiler(KernelCache.Default()).Compile(source, new KernelCompileOptions("sm_90"));
    }

    public void Dispose()
    {
        SetThreadOrder(-1);
        for (int i = owned.Count - 1; i >= 0; i--)
            owned[i].Dispose();
        Module.Dispose();
        Stream.Dispose();
        Context.Dispose();
    }
}
