using ToMe.Benchmarking;

namespace ToMe.Backends.Cuda;

// Device time for the kernel benchmark: CUDA events around work queued on the backend's stream.
internal sealed partial class CudaBackend : IKernelClock
{
    public double Time(Action work, int repeats)
    {
        using var start = new CudaEvent(Current());
        using var end = new CudaEvent(context);
        start.Record(stream);
        for (int i = 0; i < repeats; i++)
            work();
        end.Record(stream);
        end.Synchronize();
        return CudaEvent.ElapsedMilliseconds(start, end) / repeats;
    }

    public double CopyBandwidth(long bytes)
    {
        using var source = DeviceBuffer<byte>.Allocate(Current(), bytes);
        using var destination = DeviceBuffer<byte>.Allocate(context, bytes);
        source.FillBytes(1, stream);
        double ms = KernelTimer.Best(this, () => source.CopyTo(destination, stream));
        return 2.0 * bytes / (ms / 1e3) / 1e9;
    }
}
