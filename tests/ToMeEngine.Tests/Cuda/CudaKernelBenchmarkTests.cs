using ToMe.Benchmarking;

namespace ToMe.Tests.Cuda;

/// <summary><c>tome kernels bench --backend cuda</c>'s library half on the device: CUDA events time every op at ViT-S shapes.</summary>
public class CudaKernelBenchmarkTests
{
    [Fact]
    public void EveryOpIsTimedByDeviceEvents()
    {
        using var gpu = BackendPair.CreateGpu();
        Assert.IsAssignableFrom<IKernelClock>(gpu);
        var peaks = DeviceKernelBenchmark.MeasurePeaks(gpu, gemmSize: 64, copyBytes: 1 << 20, budgetMilliseconds: 0);
        Assert.True(peaks.GemmTflops > 0 && peaks.CopyGigabytesPerSecond > 0, peaks.ToString());
        var results = DeviceKernelBenchmark.Run(gpu, ["ViT-S"], [1], peaks, budgetMilliseconds: 0);
        Assert.Equal(16, results.Count);
        Assert.All(results, r => Assert.True(r.Milliseconds > 0 && double.IsFinite(r.Rate), $"{r.Kernel}: {r.Milliseconds} ms"));
    }
}
