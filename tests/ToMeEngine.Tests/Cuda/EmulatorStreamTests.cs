using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The emulated device keeps CUDA's stream semantics and no more: work on a non-blocking stream does not wait for the
/// legacy default stream, so memory filled or uploaded there and read without an event or synchronization is reported,
/// every time, instead of passing by luck. The orderings CUDA does promise (one stream, events, blocking streams, host
/// synchronization) are honoured. The legacy-stream calls are made directly: the engine's bindings no longer have them.
/// </summary>
public class EmulatorStreamTests
{
    private const int N = 1000;

    /// <summary>cuMemcpyHtoD_v2 and cuMemsetD32_v2: synchronous-looking calls queued on the legacy default stream.</summary>
    private static unsafe class LegacyStream
    {
        private static nint Export(string name) =>
            System.Runtime.InteropServices.NativeLibrary.GetExport(CudaLibraries.Require(CudaLibrary.Driver), name);

        public static void Upload(DeviceBuffer<float> destination, float[] source)
        {
            var copy = (delegate* unmanaged<ulong, void*, nuint, CuResult>)Export("cuMemcpyHtoD_v2");
            fixed (float* p = source)
                Cu.Check(copy(destination.Pointer, p, (nuint)(source.Length * sizeof(float))));
        }

        public static void Fill32(DeviceBuffer<float> destination, uint bits)
        {
            var fill = (delegate* unmanaged<ulong, uint, nuint, CuResult>)Export("cuMemsetD32_v2");
            Cu.Check(fill(destination.Pointer, bits, (nuint)destination.Length));
        }
    }

    private static float[] Ramp() => Enumerable.Range(0, N).Select(i => (float)i).ToArray();

    private static float[] PlusOne() => Enumerable.Range(0, N).Select(i => i + 1f).ToArray();

    private static void Increment(EmulatorCheckKernels k, CudaStream stream, DeviceBuffer<float> data) =>
        k["increment"].Launch(stream, 4, 256, 0, new KernelArgs().Add(data).Add(N));

    [Fact]
    public void UploadOnTheLegacyStreamIsNotOrderedBeforeANonBlockingStream()
    {
        using var k = new EmulatorCheckKernels();
        var data = k.Allocate<float>(N);
        LegacyStream.Upload(data, Ramp());   // what DeviceBuffer.FromHost did before it took a stream
        Increment(k, k.Stream, data);
        var error = Assert.Throws<CudaException>(k.Stream.Synchronize);
        Assert.Contains("unordered access to device memory: kernel increment", error.Message);
        Assert.Contains("which cuMemcpyHtoD on the legacy default stream wrote", error.Message);
    }

    [Fact]
    public void FillOnTheLegacyStreamIsNotOrderedBeforeANonBlockingStream()
    {
        using var k = new EmulatorCheckKernels();
        var data = k.Upload(Ramp());
        LegacyStream.Fill32(data, 0);   // queued on the legacy stream, asynchronous to the host: Fill32 without a stream did this
        Increment(k, k.Stream, data);
        var error = Assert.Throws<CudaException>(k.Stream.Synchronize);
        Assert.Contains("which cuMemsetD32 on the legacy default stream wrote", error.Message);
    }

    [Fact]
    public void SynchronizingTheContextOrdersTheLegacyStreamFirst()
    {
        using var k = new EmulatorCheckKernels();
        var data = k.Allocate<float>(N);
        LegacyStream.Upload(data, Ramp());
        k.Context.Synchronize();
        Increment(k, k.Stream, data);
        Assert.Equal(PlusOne(), k.Download(data));
    }

    [Fact]
    public void FillOnTheSameStreamNeedsNoSynchronization()
    {
        using var k = new EmulatorCheckKernels();
        var data = k.Allocate<float>(N);
        data.Fill32(BitConverter.SingleToUInt32Bits(5f), k.Stream);
        Increment(k, k.Stream, data);
        Assert.All(k.Download(data), v => Assert.Equal(6f, v));
    }

    [Fact]
    public void AnEventOrdersWorkAcrossStreams()
    {
        using var k = new EmulatorCheckKernels();
        using var other = new CudaStream(k.Context);
        using var done = new CudaEvent(k.Context, timing: false);
        var data = k.Upload(Ramp());
        Increment(k, k.Stream, data);
        done.Record(k.Stream);
        other.Wait(done);
        Increment(k, other, data);
        other.Synchronize();
        Assert.Equal(Ramp().Select(v => v + 2).ToArray(), k.Download(data));

        Increment(k, k.Stream, data);   // no event this time
        Increment(k, other, data);
        var error = Assert.Throws<CudaException>(other.Synchronize);
        Assert.Contains($"on stream 0x", error.Message);
        Assert.Contains("unordered access to device memory", error.Message);
    }

    [Fact]
    public unsafe void ABlockingStreamWaitsForTheLegacyStream()
    {
        using var k = new EmulatorCheckKernels();
        Cu.Check(CuDriver.cuStreamCreate(out var blocking, 0));
        try
        {
            var data = k.Allocate<float>(N);
            LegacyStream.Upload(data, Ramp());
            var args = new KernelArgs().Add(data).Add(N);
            var pointers = stackalloc void*[2];
            for (int i = 0; i < 2; i++)
                pointers[i] = System.Runtime.CompilerServices.Unsafe.AsPointer(ref args.Slot(i));
            Cu.Check(CuDriver.cuLaunchKernel(k["increment"].Handle, 4, 1, 1, 256, 1, 1, 0, blocking, pointers, null));
            Cu.Check(CuDriver.cuStreamSynchronize(blocking));
            Assert.Equal(PlusOne(), k.Download(data));
        }
        finally
        {
            CuDriver.cuStreamDestroy_v2(blocking);
        }
    }

    [Fact]
    public void GraphReplaysWhatWasCapturedAndCaptureForbidsSynchronousCalls()
    {
        using var k = new EmulatorCheckKernels();
        var data = k.Upload(Ramp());
        using (var graph = k.Stream.Capture(s => Increment(k, s, data)))
        {
            for (int i = 0; i < 3; i++)
                graph.Launch(k.Stream);
            Assert.Equal(Ramp().Select(v => v + 3).ToArray(), k.Download(data));
        }

        k.Stream.BeginCapture();
        var unsafeCall = Assert.Throws<CudaException>(() => DeviceBuffer<float>.Allocate(k.Context, 16));
        Assert.Equal((int)CuResult.ErrorStreamCaptureUnsupported, unsafeCall.Status);
        var end = Assert.Throws<CudaException>(() => k.Stream.EndCapture());
        Assert.Equal((int)CuResult.ErrorStreamCaptureInvalidated, end.Status);
        Assert.False(k.Stream.IsCapturing);
    }
}
