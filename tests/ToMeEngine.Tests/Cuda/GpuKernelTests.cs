using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Kernels;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Tests.Cuda;

/// <summary>Kernel launches, memory, graphs and the kernel cache on a real device, against CPU twins.</summary>
public class GpuKernelTests
{
    private const float Sentinel = -12345.5f;

    [Theory]
    [InlineData(1, 0)]
    [InlineData(197 * 768 + 3, 0)]
    [InlineData(4099, 1)] // offset by one element: the unaligned scalar path
    public void ResidualAddMatchesCpuAndLeavesSentinelsAlone(int n, int offset)
    {
        using var context = Gpu.Context();
        using var kernels = new KernelLibrary(context);
        using var stream = new CudaStream(context);
        var a = Gpu.Random(n, seed: 3);
        var b = Gpu.Random(n, seed: 4);
        using var da = DeviceBuffer<float>.FromHost(stream, a);
        using var dbuf = DeviceBuffer<float>.FromHost(stream, b);
        using var output = DeviceBuffer<float>.Allocate(context, n + offset + 64);
        output.Fill32(BitConverter.SingleToUInt32Bits(Sentinel), stream);

        kernels.Function("residual_add.cu", "residual_add_f32").Launch(stream, grid: Math.Min((n + 1023) / 1024, 1024), block: 256, 0,
            new KernelArgs().Add(da).Add(dbuf).Add((long)n).Add(output.ElementPointer(offset)));

        var result = output.ToArray(stream);
        var expected = a.Zip(b, (x, y) => x + y).ToArray();
        Gpu.AssertClose(expected, result.AsSpan(offset, n), 0, 0, $"residual_add n={n}");
        Assert.All(result[..offset].Concat(result[(offset + n)..]), v => Assert.Equal(Sentinel, v));
    }

    [Theory]
    [InlineData(1, 3072)]
    [InlineData(197, 3072)]
    [InlineData(5, 33)]
    public void BiasGeluMatchesCpu(int rows, int channels)
    {
        using var context = Gpu.Context();
        using var kernels = new KernelLibrary(context);
        using var stream = new CudaStream(context);
        var x = Gpu.Random(rows * channels, seed: 5, scale: 4f);
        var bias = Gpu.Random(channels, seed: 6);
        using var dx = DeviceBuffer<float>.FromHost(stream, x);
        using var db = DeviceBuffer<float>.FromHost(stream, bias);

        kernels.Function("bias_gelu.cu", "bias_gelu_f32").Launch(stream, grid: 256, block: 256, 0,
            new KernelArgs().Add(db).Add(rows).Add(channels).Add(dx));

        var expected = x.Select((v, i) => CpuTwins.GeluErf((double)v + bias[i % channels])).ToArray();
        Gpu.AssertClose(expected, dx.ToArray(stream), 2e-6f, 1e-5f, $"bias_gelu {rows}x{channels}");
    }

    [Fact]
    public void LaunchErrorNamesTheKernel()
    {
        using var context = Gpu.Context();
        using var kernels = new KernelLibrary(context);
        using var stream = new CudaStream(context);
        var function = kernels.Function("bias_gelu.cu", "bias_gelu_f32");
        Assert.True(function.Registers > 0);
        var error = Assert.Throws<CudaException>(() => function.Launch(stream, 1, block: 4096, 0, new KernelArgs().Add(0UL).Add(0).Add(1).Add(0UL)));
        Assert.Contains("bias_gelu.cu: bias_gelu_f32", error.Message);
    }

    [Fact]
    public void GraphCaptureReplaysTheSameWork()
    {
        using var context = Gpu.Context();
        using var kernels = new KernelLibrary(context);
        using var stream = new CudaStream(context);
        const int n = 1000;
        var x = Gpu.Random(n, seed: 7);
        var y = Gpu.Random(n, seed: 8);
        using var dx = DeviceBuffer<float>.FromHost(stream, x);
        using var dy = DeviceBuffer<float>.FromHost(stream, y);
        var add = kernels.Function("residual_add.cu", "residual_add_f32");
        add.Launch(stream, 1, 256, 0, new KernelArgs().Add(dx).Add(dy).Add((long)n).Add(dx)); // warm-up outside capture
        stream.Synchronize();

        using var graph = stream.Capture(s => add.Launch(s, 4, 256, 0, new KernelArgs().Add(dx).Add(dy).Add((long)n).Add(dx)));
        for (var i = 0; i < 3; i++)
            graph.Launch(stream);

        // One eager add plus three replays: x + 4y, accumulated in the same order on the CPU.
        var expected = x.ToArray();
        for (var step = 0; step < 4; step++)
            for (var i = 0; i < n; i++)
                expected[i] += y[i];
        Gpu.AssertClose(expected, dx.ToArray(stream), 0, 0, "graph replay");
    }

    [Fact]
    public void SecondStartLoadsKernelsFromCache()
    {
        using var context = Gpu.Context();
        using var dir = new TempDirectory();
        using (var first = new KernelLibrary(context, new KernelCompiler(new KernelCache(dir.Path))))
        {
            first.Function("layer_norm.cu", "layer_norm_f32");
            Assert.Equal(1, first.Compiler.CompilationCount);
        }
        using var second = new KernelLibrary(context, new KernelCompiler(new KernelCache(dir.Path)));
        var function = second.Function("layer_norm.cu", "layer_norm_f32");
        Assert.Equal(0, second.Compiler.CompilationCount);
        Assert.True(function.Registers > 0);
    }

    [Fact]
    public void PinnedAsyncCopiesStreamOrderedMemoryAndEventTiming()
    {
        using var context = Gpu.Context();
        using var stream = new CudaStream(context);
        using var start = new CudaEvent(context);
        using var end = new CudaEvent(context);
        const int n = 1 << 20;
        using var upload = PinnedBuffer<float>.Allocate(context, n, writeCombined: true);
        using var download = PinnedBuffer<float>.Allocate(context, n);
        for (var i = 0; i < n; i++)
            upload.Span[i] = i * 0.5f;

        start.Record(stream);
        using (var device = DeviceBuffer<float>.AllocateAsync(stream, n))
        using (var copy = DeviceBuffer<float>.AllocateAsync(stream, n))
        {
            device.CopyFromAsync(upload, stream);
            device.CopyTo(copy, stream);
            copy.CopyToAsync(download, stream);
        }
        end.Record(stream);
        end.Synchronize();

        Assert.True(end.IsComplete);
        Assert.True(CudaEvent.ElapsedMilliseconds(start, end) >= 0);
        for (var i = 0; i < n; i += 4099)
            Assert.Equal(i * 0.5f, download.Span[i]);
    }
}
