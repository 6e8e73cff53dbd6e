using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>
/// A device's primary context, retained for this object's lifetime. Every entry point that calls the
/// driver first calls <see cref="MakeCurrent"/>: xunit and async code move work between threads, and
/// the driver's current context is per thread.
/// </summary>
internal sealed class CudaContext : IDisposable
{
    [ThreadStatic] private static CudaContext? currentOnThisThread;
    private nint handle;

    private CudaContext(int ordinal, int device, nint handle, CudaDeviceInfo info)
    {
        Ordinal = ordinal;
        DeviceHandle = device;
        this.handle = handle;
        Info = info;
    }

    /// <summary>Retains the primary context of device <paramref name="ordinal"/> and makes it current on this thread.</summary>
    public static CudaContext Create(int ordinal = 0)
    {
        CudaDriver.Initialize();
        var info = CudaDriver.Device(ordinal);
        Cu.Check(CuDriver.cuDeviceGet(out var device, ordinal));
        Cu.Check(CuDriver.cuDevicePrimaryCtxRetain(out var context, device));
        var result = new CudaContext(ordinal, device, context, info);
        result.MakeCurrent();
        return result;
    }

    public int Ordinal { get; }
    internal int DeviceHandle { get; }
    public CudaDeviceInfo Info { get; }
    public bool IsDisposed => handle == 0;

    private long freedBuffers;

    /// <summary>
    /// Device buffers freed in this context so far: work recorded with device addresses (a CUDA graph) is valid only while
    /// this has not changed.
    /// </summary>
    internal long FreedBuffers => Interlocked.Read(ref freedBuffers);

    internal void NoteFreed() => Interlocked.Increment(ref freedBuffers);

    /// <summary>Makes this context current on the calling thread (a no-op when it already is).</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(handle == 0, this);
        if (ReferenceEquals(currentOnThisThread, this))
            return;
        Cu.Check(CuDriver.cuCtxSetCurrent(handle));
        currentOnThisThread = this;
    }

    /// <summary>Makes the context current without throwing; for release paths (Dispose, finalizers).</summary>
    internal bool TryMakeCurrent()
    {
        if (handle == 0)
            return false;
        if (ReferenceEquals(currentOnThisThread, this))
            return true;
        if (CuDriver.cuCtxSetCurrent(handle) != CuResult.Success)
            return false;
        currentOnThisThread = this;
        return true;
    }

    /// <summary>Waits for all work in the context to finish and reports any asynchronous error.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        Cu.Check(CuDriver.cuCtxSynchronize());
    }

    /// <summary>Free and total device memory in bytes.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        Cu.Check(CuDriver.cuMemGetInfo_v2(out var free, out var total));
        return ((long)free, (long)total);
    }

    /// <summary>Keeps up to <paramref name="bytes"/> of freed stream-ordered memory in the default pool instead of returning it to the driver.</summary>
    public unsafe void SetMemoryPoolReleaseThreshold(ulong bytes)
    {
        MakeCurrent();
        Cu.Check(CuDriver.cuDeviceGetDefaultMemPool(out var pool, DeviceHandle));
        Cu.Check(CuDriver.cuMemPoolSetAttribute(pool, CuMemPoolAttribute.ReleaseThreshold, &bytes));
    }

    public void Dispose()
    {
        if (handle == 0)
            return;
        // Resources owned elsewhere may still hold device memory; releasing the primary context
        // only drops this object's reference (the driver counts retains).
        CuDriver.cuDevicePrimaryCtxRelease_v2(DeviceHandle);
        if (ReferenceEquals(currentOnThisThread, this))
            currentOnThisThread = null;
        handle = 0;
    }
}

/// <summary>
/// Base for objects that own one native CUDA resource: releases it on Dispose, and from the finalizer
/// as a last resort without ever throwing there.
/// </summary>
internal abstract class CudaResource : IDisposable
{
    private int disposed;

    protected CudaResource(CudaContext context) => Context = context;

    public CudaContext Context { get; }
    public bool IsDisposed => Volatile.Read(ref disposed) != 0;

    /// <summary>For constructors that fail after the base constructor ran: nothing was acquired (or it was already released), so nothing is left for the finalizer.</summary>
    protected void AbandonConstruction()
    {
        Interlocked.Exchange(ref disposed, 1);
        GC.SuppressFinalize(this);
    }

    protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    /// <summary>Releases the native handle; must not throw. Called at most once.</summary>
    protected abstract void Release();

    public void Dispose()
    {
        ReleaseOnce();
        GC.SuppressFinalize(this);
    }

    ~CudaResource()
    {
        try
        {
            ReleaseOnce();
        }
        catch
        {
            // A finalizer must not throw; a leaked handle is the lesser harm.
        }
    }

    private void ReleaseOnce()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
            return;
        if (Context.TryMakeCurrent())
            Release();
    }
}
