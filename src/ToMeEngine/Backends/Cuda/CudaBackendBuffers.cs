using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>
/// Device memory handed out by <see cref="CudaBackend"/> as an <see cref="IBackend"/> buffer: float32 or int32 elements,
/// or (T = ushort) fp16/bf16 activations of a half-precision pass, <see cref="Storage"/> saying which.
/// </summary>
internal sealed class CudaBuffer<T> : DeviceBuffer where T : unmanaged
{
    private readonly CudaBackend owner;

    public CudaBuffer(CudaBackend owner, DeviceBuffer<T> memory, FloatStorage storage = FloatStorage.F32)
    {
        this.owner = owner;
        Memory = memory;
        Storage = storage;
    }

    public DeviceBuffer<T> Memory { get; }

    /// <summary>What the elements hold when they are real numbers (F16/BF16 only for T = ushort).</summary>
    public FloatStorage Storage { get; }

    public ulong Pointer => Memory.Pointer;

    public override long Length => Memory.Length;

    public override unsafe int ElementSize => sizeof(T);

    public override void Dispose()
    {
        // Kernels queued on the backend's stream may still read this memory.
        owner.SynchronizeQuietly();
        Memory.Dispose();
    }
}

/// <summary>
/// A Linear layer on the device, converted and uploaded once: W [out, in] in the layer's storage (fp32 for fp32 and tf32,
/// else fp16/bf16, the tensor cores' operand), b [out] always fp32 (an epilogue term).
/// </summary>
internal sealed class CudaLinearWeights(IDisposable weightMemory, ulong weight, DeviceBuffer<float> bias, int outFeatures, int inFeatures,
    Precision precision) : ILinearWeights
{
    public ulong Weight { get; } = weight;
    public DeviceBuffer<float> Bias { get; } = bias;
    public int OutFeatures { get; } = outFeatures;
    public int InFeatures { get; } = inFeatures;
    public Precision Precision { get; } = precision;
    public FloatStorage Storage => FloatStorages.Of(Precision);

    public void Dispose()
    {
        weightMemory.Dispose();
        Bias.Dispose();
    }
}

/// <summary>
/// Device scratch memory that an op needs between its kernels (unfolded patches, a GEMM result, normalized
/// metrics, the merge plan). Grows on demand and is otherwise reused, so steady-state forwards allocate nothing.
/// </summary>
internal sealed class ScratchBuffer<T>(CudaContext context, CudaStream stream) : IDisposable where T : unmanaged
{
    private DeviceBuffer<T>? buffer;

    /// <summary>The address of at least <paramref name="length"/> elements, valid until the next call that grows it.</summary>
    public ulong Get(long length)
    {
        if (buffer is null || buffer.Length < length)
        {
            if (buffer is not null)
            {
                // The old block may still be in use by queued kernels.
                stream.Synchronize();
                buffer.Dispose();
                buffer = null;
            }
            buffer = DeviceBuffer<T>.Allocate(context, Math.Max(1, length), $"scratch memory between an op's kernels ({length:N0} {typeof(T).Name} elements)");
        }
        return buffer.Pointer;
    }

    public void Dispose()
    {
        buffer?.Dispose();
        buffer = null;
    }
}

/// <summary>Pageable host memory to and from the device, ordered on one stream and complete when the call returns.</summary>
internal static unsafe class StreamCopy
{
    public static void Upload<T>(CudaStream stream, ReadOnlySpan<T> source, ulong destination) where T : unmanaged
    {
        if (source.IsEmpty)
            return;
        stream.Context.MakeCurrent();
        fixed (T* p = source)
        {
            Cu.Check(CuDriver.cuMemcpyHtoDAsync_v2(destination, p, (nuint)((long)source.Length * sizeof(T)), stream.Handle));
            // Pageable memory: the copy reads the span until the stream reaches this point.
            stream.Synchronize();
        }
    }

    public static void Download<T>(CudaStream stream, ulong source, Span<T> destination) where T : unmanaged
    {
        if (destination.IsEmpty)
            return;
        stream.Context.MakeCurrent();
        fixed (T* p = destination)
        {
            Cu.Check(CuDriver.cuMemcpyDtoHAsync_v2(p, source, (nuint)((long)destination.Length * sizeof(T)), stream.Handle));
            stream.Synchronize();
        }
    }
}
