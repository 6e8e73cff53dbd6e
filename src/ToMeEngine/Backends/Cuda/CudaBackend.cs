using ToMe.Backends.Cuda.Kernels;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>
/// The forward pass on one NVIDIA GPU in fp32 (the exact mode: GEMMs through cuBLAS with TF32 off), tf32, bf16 or fp16
/// (GEMMs through cuBLASLt on half operands): kernels/*.cu through NVRTC. Owns a context (made current at every entry point), one stream, the kernel library and a cuBLAS handle. All ops
/// are queued on the stream without host synchronization; Upload and Download return when the copy is complete.
/// Not thread-safe (one forward at a time), like <see cref="Model.ForwardPass"/>.
/// </summary>
internal sealed partial class CudaBackend : IBackend
{
    private const int Block = 256;

    private readonly CudaContext context;
    private readonly CudaStream stream;
    private readonly KernelLibrary kernels;
    private readonly CublasHandle blas;
    private DeviceBuffer<byte>? blasWorkspace;
    private readonly ScratchBuffer<float> unfoldedPatches, gemmOutput, normalizedMetric, classStats;
    private readonly ScratchBuffer<int> mergeOwner, mergeDestination;
    private readonly ScratchBuffer<ushort> unfoldedHalfPatches;
    private bool disposed;

    /// <param name="ordinal">The device.</param>
    /// <param name="compiler">The kernel compiler (default: NVRTC with the disk cache).</param>
    public CudaBackend(int ordinal = 0, KernelCompiler? compiler = null)
    {
        CudaLibraries.Require(CudaLibrary.Nvrtc);
        context = CudaContext.Create(ordinal);
        var owned = new List<IDisposable>();
        try
        {
            stream = new CudaStream(context);
            owned.Add(stream);
            kernels = new KernelLibrary(context, compiler);
            owned.Add(kernels);
            blas = new CublasHandle(context, stream);
            owned.Add(blas);
            // CUBLAS_COMPUTE_32F without the TF32 math mode: full fp32 products, as the CPU backend.
            blas.SetMathMode(CublasMath.Default);
        }
        catch
        {
            for (int i = owned.Count - 1; i >= 0; i--)
                owned[i].Dispose();
            context.Dispose();
            throw;
        }
        unfoldedPatches = new(context, stream);
        gemmOutput = new(context, stream);
        normalizedMetric = new(context, stream);
        classStats = new(context, stream);
        mergeOwner = new(context, stream);
        mergeDestination = new(context, stream);
        unfoldedHalfPatches = new(context, stream);
    }

    /// <summary>Creates a backend on device <paramref name="ordinal"/>, or says why there is none (no driver, no device, no NVRTC or cuBLAS).</summary>
    public static bool TryCreate(out CudaBackend? backend, out string reason, int ordinal = 0)
    {
        backend = null;
        if (!CudaDriver.TryInitialize(out reason))
            return false;
        try
        {
            backend = new CudaBackend(ordinal);
            reason = "";
            return true;
        }
        catch (Exception e) when (e is CudaException or CudaLibraryNotFoundException or NotSupportedException or DllNotFoundException or EntryPointNotFoundException)
        {
            reason = e.Message;
            return false;
        }
    }

    public string Name => "cuda";

    public CudaDeviceInfo Device => context.Info;

    public string DeviceName => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Device.Name} (cuda:{Device.Ordinal}, sm_{Device.ComputeMajor}{Device.ComputeMinor}, {Device.TotalMemoryBytes / (double)(1L << 30):F0} GiB)"); // the emulated device's name says what it is

    internal CudaStream Stream => stream;

    internal CudaContext Context => context;

    private const long BlasWorkspaceBytes = 32L << 20;

    /// <summary>
    /// The cuBLAS handle with its own workspace, set at the first GEMM (a forward's op-by-op warm-up, before any capture)
    /// so that cuBLAS never allocates inside a captured graph; 32 MiB is what cuBLAS asks for on Hopper (less suffices
    /// for older GPUs). Set there rather than at construction, so that its failure is reported as part of a forward.
    /// </summary>
    private CublasHandle Blas()
    {
        if (blasWorkspace is null)
        {
            var workspace = DeviceBuffer<byte>.Allocate(context, BlasWorkspaceBytes, $"cuBLAS's workspace (32 MiB, {CudaFaults.SetOnce})");
            try
            {
                blas.SetWorkspace(workspace);
            }
            catch
            {
                workspace.Dispose();
                throw;
            }
            blasWorkspace = workspace;
        }
        return blas;
    }

    /// <summary>
    /// The kernels and cuBLAS address buffers in 64 bits, so only the device's memory bounds one: a buffer larger than
    /// all of it is refused up front rather than by a failed allocation.
    /// </summary>
    public long MaxBufferElements => context.Info.TotalMemoryBytes / sizeof(float);

    public DeviceBuffer AllocateFloat(long length) => new CudaBuffer<float>(this, DeviceBuffer<float>.Allocate(Current(), length));

    public DeviceBuffer AllocateInt(long length) => new CudaBuffer<int>(this, DeviceBuffer<int>.Allocate(Current(), length));

    public void Upload(ReadOnlySpan<float> source, DeviceBuffer destination)
    {
        if (destination is CudaBuffer<ushort> half)
        {
            var halves = new ushort[source.Length];
            FloatStorages.ToHalf(source, halves, half.Storage);
            StreamCopy.Upload<ushort>(stream, halves, Fits(half, source.Length, nameof(destination)));
            return;
        }
        StreamCopy.Upload(stream, source, Fits(F(destination), source.Length, nameof(destination)));
    }

    public void Upload(ReadOnlySpan<int> source, DeviceBuffer destination) => StreamCopy.Upload(stream, source, Fits(I(destination), source.Length, nameof(destination)));

    public void Download(DeviceBuffer source, Span<float> destination)
    {
        if (source is CudaBuffer<ushort> half)
        {
            var halves = new ushort[destination.Length];
            StreamCopy.Download<ushort>(stream, Fits(half, destination.Length, nameof(source)), halves);
            FloatStorages.ToFloat(halves, destination, half.Storage);
            return;
        }
        StreamCopy.Download(stream, Fits(F(source), destination.Length, nameof(source)), destination);
    }

    public void Download(DeviceBuffer source, Span<int> destination) => StreamCopy.Download(stream, Fits(I(source), destination.Length, nameof(source)), destination);

    /// <summary>Waits for every queued op and reports an asynchronous error.</summary>
    public void Synchronize()
    {
        Current();
        stream.Synchronize();
    }

    /// <summary>For release paths: waits for the stream, never throws.</summary>
    internal void SynchronizeQuietly()
    {
        if (disposed || !context.TryMakeCurrent())
            return;
        CuDriver.cuStreamSynchronize(stream.Handle);
    }

    private CudaContext Current()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        context.MakeCurrent();
        return context;
    }

    private static CudaBuffer<float> F(DeviceBuffer buffer) => buffer as CudaBuffer<float>
        ?? throw new ArgumentException($"expected a float buffer of the CUDA backend, got {buffer.GetType().Name}");

    private static CudaBuffer<int> I(DeviceBuffer buffer) => buffer as CudaBuffer<int>
        ?? throw new ArgumentException($"expected an int buffer of the CUDA backend, got {buffer.GetType().Name}");

    /// <summary>The buffer's address after checking it holds at least <paramref name="count"/> elements (kernels do not bound-check).</summary>
    private static ulong Fits<T>(CudaBuffer<T> buffer, long count, string name) where T : unmanaged
    {
        if (count > buffer.Length)
            throw new ArgumentException($"{name} holds {buffer.Length} elements, the op needs {count}");
        return buffer.Pointer;
    }

    private static ulong Float(DeviceBuffer buffer, long count, string name) => Fits(F(buffer), count, name);

    /// <summary>An activation (fp32, or fp16/bf16 in a half pass): its address, checked to hold <paramref name="count"/>, and its storage.</summary>
    private static (ulong Pointer, FloatStorage Storage) Activation(DeviceBuffer buffer, long count, string name) => buffer switch
    {
        CudaBuffer<ushort> half => (Fits(half, count, name), half.Storage),
        _ => (Float(buffer, count, name), FloatStorage.F32),
    };

    private static ulong OptionalFloat(DeviceBuffer? buffer, long count, string name) => buffer is null ? 0UL : Float(buffer, count, name);

    private static ulong Int(DeviceBuffer buffer, long count, string name) => Fits(I(buffer), count, name);

    private CudaFunction Kernel(string file, string entryPoint) => kernels.Function(file, entryPoint);

    /// <summary>Blocks for a grid-stride kernel over <paramref name="elements"/> (capped; the kernels loop).</summary>
    private static uint GridStride(long elements, int block = Block) => (uint)Math.Clamp((elements + block - 1) / block, 1, 65535);

    private static uint Blocks(long items, int perBlock) => checked((uint)Math.Max(1, (items + perBlock - 1) / perBlock));

    private void Launch(string file, string entryPoint, Dim3 grid, Dim3 block, uint sharedBytes, KernelArgs args) =>
        Kernel(file, entryPoint).Launch(stream, grid, block, sharedBytes, args);

    public void Dispose()
    {
        if (disposed)
            return;
        SynchronizeQuietly();
        disposed = true;
        unfoldedPatches.Dispose();
        gemmOutput.Dispose();
        normalizedMetric.Dispose();
        classStats.Dispose();
        mergeOwner.Dispose();
        mergeDestination.Dispose();
        unfoldedHalfPatches.Dispose();
        DisposeLt();
        blas.Dispose();
        blasWorkspace?.Dispose();
        kernels.Dispose();
        stream.Dispose();
        context.Dispose();
    }
}
