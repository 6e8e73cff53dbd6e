using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>
/// Device memory holding <see cref="Length"/> elements of <typeparamref name="T"/>. Allocated either
/// synchronously (<c>cuMemAlloc</c>) or stream-ordered from the device's default pool
/// (<c>cuMemAllocAsync</c>), in which case it is freed on the same stream.
/// </summary>
internal sealed unsafe class DeviceBuffer<T> : CudaResource where T : unmanaged
{
    private readonly CudaStream? orderedOn;

    private DeviceBuffer(CudaContext context, ulong pointer, long length, CudaStream? orderedOn) : base(context)
    {
        Pointer = pointer;
        Length = length;
        this.orderedOn = orderedOn;
    }

    /// <summary>Allocates <paramref name="length"/> elements with <c>cuMemAlloc</c>; contents are undefined.</summary>
    /// <param name="context">The device's context.</param>
    /// <param name="length">Elements.</param>
    /// <param name="what">What the memory is for, named by a <see cref="CudaOutOfMemoryException"/> when it does not fit.</param>
    public static DeviceBuffer<T> Allocate(CudaContext context, long length, string? what = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        context.MakeCurrent();
        ulong pointer = 0;
        if (length > 0)
            CheckAllocation(context, CuDriver.cuMemAlloc_v2(out pointer, (nuint)(length * sizeof(T))), length, what);
        return new DeviceBuffer<T>(context, pointer, length, null);
    }

    private static void CheckAllocation(CudaContext context, CuResult result, long length, string? what,
        [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(result))] string expression = "")
    {
        if (result == CuResult.Success)
            return;
        var error = Cu.Error(result, expression);
        throw result == CuResult.ErrorOutOfMemory
            ? CudaFaults.OutOfMemory(error, context, what ?? $"a buffer of {length:N0} {typeof(T).Name} elements", length * sizeof(T))
            : error;
    }

    /// <summary>Allocates stream-ordered from the default memory pool; freed on <paramref name="stream"/> at Dispose.</summary>
    public static DeviceBuffer<T> AllocateAsync(CudaStream stream, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        stream.Context.MakeCurrent();
        ulong pointer = 0;
        if (length > 0)
            CheckAllocation(stream.Context, CuDriver.cuMemAllocAsync(out pointer, (nuint)(length * sizeof(T)), stream.Handle), length, null);
        return new DeviceBuffer<T>(stream.Context, pointer, length, stream);
    }

    /// <summary>
    /// Allocates and uploads <paramref name="source"/> on <paramref name="stream"/>, after the work already queued there;
    /// the copy is complete when the call returns.
    /// </summary>
    public static DeviceBuffer<T> FromHost(CudaStream stream, ReadOnlySpan<T> source)
    {
        var buffer = Allocate(stream.Context, source.Length);
        try
        {
            buffer.CopyFrom(source, stream);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>The device address (CUdeviceptr); 0 for an empty buffer.</summary>
    public ulong Pointer { get; }
    public long Length { get; }
    public long SizeInBytes => Length * sizeof(T);

    /// <summary>The address of element <paramref name="index"/>.</summary>
    public ulong ElementPointer(long index) => Pointer + (ulong)(index * sizeof(T));

    // Every copy and fill below is ordered on a stream the caller names. The unordered forms (cuMemcpyHtoD, cuMemsetD32
    // without a stream) run on the legacy default stream, which the engine's non-blocking streams do not wait for: a
    // kernel queued after them could read the memory before they land.

    /// <summary>Copies pageable host memory in on <paramref name="stream"/>; complete when the call returns.</summary>
    public void CopyFrom(ReadOnlySpan<T> source, CudaStream stream)
    {
        CheckLength(source.Length);
        StreamCopy.Upload(stream, source, Pointer);
    }

    /// <summary>Copies out to pageable host memory on <paramref name="stream"/>, after the work queued there; complete when the call returns.</summary>
    public void CopyTo(Span<T> destination, CudaStream stream)
    {
        CheckLength(destination.Length);
        StreamCopy.Download(stream, Pointer, destination);
    }

    /// <summary>The contents once the work queued on <paramref name="stream"/> is done.</summary>
    public T[] ToArray(CudaStream stream)
    {
        var result = new T[Length];
        CopyTo(result, stream);
        return result;
    }

    /// <summary>Copies from pinned host memory on <paramref name="stream"/>; the host buffer must stay alive until the stream reaches this point.</summary>
    public void CopyFromAsync(PinnedBuffer<T> source, CudaStream stream)
    {
        CheckLength(source.Length);
        if (Length == 0)
            return;
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuMemcpyHtoDAsync_v2(Pointer, (void*)source.Pointer, (nuint)SizeInBytes, stream.Handle));
    }

    /// <summary>Copies into pinned host memory on <paramref name="stream"/>; read it after the stream is synchronized.</summary>
    public void CopyToAsync(PinnedBuffer<T> destination, CudaStream stream)
    {
        CheckLength(destination.Length);
        if (Length == 0)
            return;
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuMemcpyDtoHAsync_v2((void*)destination.Pointer, Pointer, (nuint)SizeInBytes, stream.Handle));
    }

    /// <summary>Device-to-device copy of the whole buffer on <paramref name="stream"/>.</summary>
    public void CopyTo(DeviceBuffer<T> destination, CudaStream stream)
    {
        ThrowIfDisposed();
        if (destination.Length != Length)
            throw new ArgumentException($"destination holds {destination.Length} elements, source {Length}");
        if (Length == 0)
            return;
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuMemcpyDtoDAsync_v2(destination.Pointer, Pointer, (nuint)SizeInBytes, stream.Handle));
    }

    /// <summary>Sets every byte to <paramref name="value"/> on <paramref name="stream"/>.</summary>
    public void FillBytes(byte value, CudaStream stream)
    {
        ThrowIfDisposed();
        if (SizeInBytes == 0)
            return;
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuMemsetD8Async(Pointer, value, (nuint)SizeInBytes, stream.Handle));
    }

    /// <summary>Sets every 32-bit word to <paramref name="bits"/> (e.g. a float's bits) on <paramref name="stream"/>; the buffer size must be a multiple of 4 bytes.</summary>
    public void Fill32(uint bits, CudaStream stream)
    {
        ThrowIfDisposed();
        if (SizeInBytes % 4 != 0)
            throw new InvalidOperationException($"buffer of {SizeInBytes} bytes is not a whole number of 32-bit words");
        if (SizeInBytes == 0)
            return;
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuMemsetD32Async(Pointer, bits, (nuint)(SizeInBytes / 4), stream.Handle));
    }

    private void CheckLength(int hostLength)
    {
        ThrowIfDisposed();
        if (hostLength != Length)
            throw new ArgumentException($"host span holds {hostLength} elements, device buffer {Length}");
    }

    protected override void Release()
    {
        if (Pointer == 0)
            return;
        Context.NoteFreed();
        if (orderedOn is { IsDisposed: false })
            CuDriver.cuMemFreeAsync(Pointer, orderedOn.Handle);
        else
            CuDriver.cuMemFree_v2(Pointer);
    }
}

/// <summary>Page-locked host memory (<c>cuMemHostAlloc</c>) for asynchronous copies.</summary>
internal sealed unsafe class PinnedBuffer<T> : CudaResource where T : unmanaged
{
    private PinnedBuffer(CudaContext context, nint pointer, int length) : base(context)
    {
        Pointer = pointer;
        Length = length;
    }

    /// <summary>Allocates <paramref name="length"/> elements; <paramref name="writeCombined"/> suits buffers the host only writes.</summary>
    public static PinnedBuffer<T> Allocate(CudaContext context, int length, bool writeCombined = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        context.MakeCurrent();
        var flags = CuFlags.MemHostAllocPortable | (writeCombined ? CuFlags.MemHostAllocWriteCombined : 0);
        Cu.Check(CuDriver.cuMemHostAlloc(out var pointer, (nuint)Math.Max(1L, (long)length * sizeof(T)), flags));
        return new PinnedBuffer<T>(context, pointer, length);
    }

    public nint Pointer { get; }
    public int Length { get; }

    public Span<T> Span
    {
        get
        {
            ThrowIfDisposed();
            return new Span<T>((void*)Pointer, Length);
        }
    }

    protected override void Release() => CuDriver.cuMemFreeHost(Pointer);
}
