using ToMe.Backends.Cpu;
using ToMe.Benchmarking;

namespace ToMe.Tests.Benchmarking;

/// <summary>
/// The per-op device benchmark driven through <see cref="ToMe.Backends.IBackend"/> on the CPU backend: every op runs at the
/// real ViT shapes on the buffers the benchmark wires together (a wrong size or index would throw or read out of range
/// here before it could on a GPU), and the timer's repeat logic.
/// </summary>
public class DeviceKernelBenchmarkTests
{
    private static readonly string[] Kernels =
    [
        "patch_embed", "layer_norm", "linear qkv", "attention", "linear proj + residual", "bipartite_match", "select_top_r", "merge",
        "class_importance", "linear fc1 + GELU", "linear fc2 + residual", "grid_components", "assign_to_most_similar", "merge_assigned",
        "gather_prefix", "weighted_mean_pool",
    ];

    [Fact]
    public void EveryOpRunsAtViTSmallShapesWithRatesAgainstThePeaks()
    {
        using var cpu = new CpuBackend(maxThreads: 2);
        var peaks = DeviceKernelBenchmark.MeasurePeaks(cpu, gemmSize: 64, copyBytes: 1 << 20, budgetMilliseconds: 0);
        Assert.True(peaks.GemmTflops > 0 && double.IsFinite(peaks.GemmTflops), $"GEMM peak {peaks.GemmTflops}");
        Assert.True(peaks.CopyGigabytesPerSecond > 0 && double.IsFinite(peaks.CopyGigabytesPerSecond), $"copy peak {peaks.CopyGigabytesPerSecond}");

        var seen = new List<KernelTiming>();
        var results = DeviceKernelBenchmark.Run(cpu, ["vit-s"], [1], peaks, budgetMilliseconds: 0, seen.Add);

        Assert.Equal(results, seen);
        Assert.Equal(Kernels, results.Select(r => r.Kernel));
        Assert.All(results, r =>
        {
            Assert.Equal(("ViT-S", 1), (r.Model, r.Batch));
            Assert.True(r.Milliseconds > 0 && r.Rate > 0 && r.PercentOfPeak > 0, $"{r.Kernel}: {r.Milliseconds} ms, {r.Rate} {r.Unit}");
            Assert.Equal(r.Kernel is "patch_embed" or "attention" or "bipartite_match" or "assign_to_most_similar" || r.Kernel.StartsWith("linear", StringComparison.Ordinal)
                ? "TFLOP/s" : "GB/s", r.Unit);
        });
        Assert.Contains(results, r => r.Kernel == "linear qkv" && r.Shape == "197x1152x384");
    }

    [Fact]
    public void ModelsAndBatchesSelectTheRuns()
    {
        using var cpu = new CpuBackend(maxThreads: 1);
        var peaks = new DevicePeaks(64, 1, 1 << 20, 1);
        Assert.Empty(DeviceKernelBenchmark.Run(cpu, ["ViT-H"], [1], peaks, 0));
    }

    [Fact]
    public void TimerQueuesEnoughCallsForTheBudgetAndKeepsTheBestRound()
    {
        var clock = new ScriptedClock([2.0, 1.5, 1.0, 1.25]);
        int calls = 0;
        double ms = KernelTimer.Best(clock, () => calls++, budgetMilliseconds: 20);
        Assert.Equal(1.0, ms);
        // One untimed call, the 2 ms probe, then three rounds of 20 / 2 = 10 calls.
        Assert.Equal([1, 10, 10, 10], clock.Repeats);
        Assert.Equal(1 + 1 + 30, calls);
    }

    [Fact]
    public void ABudgetOfZeroTimesTheProbeAlone()
    {
        var clock = new ScriptedClock([0.5]);
        Assert.Equal(0.5, KernelTimer.Best(clock, () => { }, budgetMilliseconds: 0));
        Assert.Equal([1], clock.Repeats);
    }

    [Fact]
    public void AVeryFastProbeIsCappedAtAThousandCalls()
    {
        var clock = new ScriptedClock([1e-7, 0.0, 0.0, 0.0]);
        KernelTimer.Best(clock, () => { }, budgetMilliseconds: 1000);
        Assert.Equal([1, 1000, 1000, 1000], clock.Repeats);
    }

    [Fact]
    public void AProbeThatSeesNoTimeIsRepeatedWithTwiceTheCalls()
    {
        // A one-row op can read 0 ms on a coarse clock; the timer must never report it (an infinite rate).
        var clock = new ScriptedClock([0.0, 0.0, 0.25]);
        Assert.Equal(0.25, KernelTimer.Best(clock, () => { }, budgetMilliseconds: 0));
        Assert.Equal([1, 2, 4], clock.Repeats);
    }

    private sealed class ScriptedClock(double[] times) : IKernelClock
    {
        public List<int> Repeats { get; } = [];

        public double Time(Action work, int repeats)
        {
            for (int i = 0; i < repeats; i++)
                work();
            Repeats.Add(repeats);
            return times[Repeats.Count - 1];
        }

        public double CopyBandwidth(long bytes) => throw new NotSupportedException();
    }
}
