using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda.Graphs;

/// <summary>
/// Uploads a forward pass's images through pinned host memory on a copy stream of its own, so that the upload of the next
/// batch runs while the compute stream works on this one. Two slots, each a pinned host buffer, a device buffer and two
/// events: <c>uploaded</c> (recorded on the copy stream after the host-to-device copy) and <c>consumed</c> (recorded on the
/// compute stream after the device-to-device copy into the forward's own image buffer). The copy stream waits for a slot's
/// <c>consumed</c> before refilling its device buffer, the compute stream for its <c>uploaded</c> before reading it, and the
/// host for its <c>uploaded</c> before overwriting its pinned buffer.
/// </summary>
internal sealed unsafe class InputStager : IDisposable
{
    private sealed class Slot(CudaContext context) : IDisposable
    {
        public PinnedBuffer<byte>? Host;
        public DeviceBuffer<byte>? Device;
        public readonly CudaEvent Uploaded = new(context, timing: false);
        public readonly CudaEvent Consumed = new(context, timing: false);
        public bool UploadRecorded, ConsumeRecorded;
        public nint Source;
        public long Bytes;

        public void Dispose()
        {
            Host?.Dispose();
            Device?.Dispose();
            Uploaded.Dispose();
            Consumed.Dispose();
        }
    }

    private readonly CudaContext context;
    private readonly CudaStream compute;
    private readonly CudaStream copy;
    private readonly Slot[] slots;
    private int nextSlot;
    private Slot? pending;

    public InputStager(CudaContext context, CudaStream compute)
    {
        this.context = context;
        this.compute = compute;
        copy = new CudaStream(context);
        slots = [new Slot(context), new Slot(context)];
    }

    /// <summary>Batches whose upload was started ahead of their forward (by <see cref="Stage"/>) and found ready.</summary>
    public long Prefetched { get; private set; }

    /// <summary>Starts uploading <paramref name="source"/> on the copy stream; <see cref="Consume"/> of the same memory uses it.</summary>
    public void Stage(ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
            return;
        var slot = slots[nextSlot];
        nextSlot ^= 1;
        long bytes = source.Length;
        context.MakeCurrent();
        // The pinned buffer is read by the slot's last host-to-device copy until its event completes.
        if (slot.UploadRecorded)
            slot.Uploaded.Synchronize();
        if (slot.Host is null || slot.Host.Length < bytes)
            Grow(slot, bytes);
        fixed (byte* p = source)
            Buffer.MemoryCopy(p, (void*)slot.Host!.Pointer, bytes, bytes);
        if (slot.ConsumeRecorded)
            copy.Wait(slot.Consumed);
        Cu.Check(CuDriver.cuMemcpyHtoDAsync_v2(slot.Device!.Pointer, (void*)slot.Host.Pointer, (nuint)bytes, copy.Handle));
        slot.Uploaded.Record(copy);
        slot.UploadRecorded = true;
        fixed (byte* p = source)
            slot.Source = (nint)p;
        slot.Bytes = bytes;
        pending = slot;
    }

    /// <summary>
    /// Queues on the compute stream the copy of <paramref name="source"/> into <paramref name="destination"/>: from the
    /// staged upload when <see cref="Stage"/> was given this very memory, else staged now.
    /// </summary>
    public void Consume(ReadOnlySpan<byte> source, ulong destination)
    {
        if (source.IsEmpty)
            return;
        long bytes = source.Length;
        nint address;
        fixed (byte* p = source)
            address = (nint)p;
        if (pending is { } staged && staged.Source == address && staged.Bytes == bytes)
            Prefetched++;
        else
            Stage(source);
        var slot = pending!;
        pending = null;
        context.MakeCurrent();
        compute.Wait(slot.Uploaded);
        Cu.Check(CuDriver.cuMemcpyDtoDAsync_v2(destination, slot.Device!.Pointer, (nuint)bytes, compute.Handle));
        slot.Consumed.Record(compute);
        slot.ConsumeRecorded = true;
    }

    /// <summary>
    /// Drops the upload <see cref="Stage"/> started for a batch that will not run: a later <see cref="Consume"/> of memory
    /// at the same address (reused, holding other images) uploads it afresh instead of taking the stale copy.
    /// </summary>
    public void Forget() => pending = null;

    private void Grow(Slot slot, long bytes)
    {
        // The old device buffer may still be read by the compute stream's last copy out of it.
        if (slot.ConsumeRecorded)
            slot.Consumed.Synchronize();
        slot.Host?.Dispose();
        slot.Device?.Dispose();
        slot.Host = null;
        slot.Device = null;
        slot.Host = PinnedBuffer<byte>.Allocate(context, checked((int)bytes), writeCombined: true);
        slot.Device = DeviceBuffer<byte>.Allocate(context, bytes, $"the staging memory of a batch's images ({bytes:N0} bytes)");
    }

    public void Dispose()
    {
        if (context.TryMakeCurrent())
        {
            CuDriver.cuStreamSynchronize(copy.Handle);
            CuDriver.cuStreamSynchronize(compute.Handle);
        }
        foreach (var slot in slots)
            slot.Dispose();
        copy.Dispose();
    }
}
