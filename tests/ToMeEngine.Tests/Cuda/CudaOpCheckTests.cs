using ToMe.Backends.Checks;

namespace ToMe.Tests.Cuda;

/// <summary>
/// Every op of the CUDA backend against its CPU twin: the library's op checks (the same ones <c>tome kernels test</c> runs
/// on a user's device), one test each, plus the limits the backend checks on the host.
/// </summary>
public class CudaOpCheckTests
{
    /// <summary>
    /// The half kernels that the flash attention tests do not already run in every thread order: LayerNorm's half output,
    /// the Linear layers' gelu_cast and the patch embedding's patch_unfold (fp16; TF32 for bf16 passes).
    /// </summary>
    private static bool InEachOrder(OpCheck check) => check.Precision != Precision.Float32 && check.Op != "attention";

    public static TheoryData<string> Checks() => [.. OpChecks.All.Where(c => !InEachOrder(c)).Select(c => c.Name)];

    public static TheoryData<string, ThreadOrder> HalfChecks()
    {
        var data = new TheoryData<string, ThreadOrder>();
        foreach (var check in OpChecks.All.Where(InEachOrder))
            foreach (var order in Enum.GetValues<ThreadOrder>())
                data.Add(check.Name, order);
        return data;
    }

    [Theory]
    [MemberData(nameof(Checks))]
    public void MatchesCpu(string check)
    {
        using var gpu = BackendPair.CreateGpu();
        var result = OpChecks.Run(OpChecks.Find(check), gpu);
        Assert.True(result.Passed, $"{check}: {result.Failure}");
    }

    [Theory]
    [MemberData(nameof(HalfChecks))]
    public void HalfOpMatchesCpuInEachThreadOrder(string check, ThreadOrder order)
    {
        using var gpu = BackendPair.CreateGpu();
        OpCheckResult result;
        using (ThreadOrders.Use(order))
            result = OpChecks.Run(OpChecks.Find(check), gpu);
        Assert.True(result.Passed, $"{check} ({order} thread order): {result.Failure}");
    }

    [Fact]
    public void EveryPrecisionTheDeviceRunsIsChecked()
    {
        using var gpu = BackendPair.CreateGpu();
        var ops = OpChecks.For(gpu).Where(c => c.Precision != Precision.Float32).Select(c => $"{c.Op} {c.Precision.Name()}").ToHashSet();
        foreach (var op in new[] { "layer_norm fp16", "layer_norm bf16", "linear fp16", "linear bf16", "attention fp16", "attention bf16", "patch_embed fp16", "patch_embed tf32" })
            Assert.Contains(op, ops);
        using var cpu = new ToMe.Backends.Cpu.CpuBackend(1);
        Assert.All(OpChecks.For(cpu), c => Assert.Equal(Precision.Float32, c.Precision));
    }

    [Fact]
    public void UnsupportedHeadDimIsRefusedByName()
    {
        using var pair = new OpCheckPair(BackendPair.CreateGpu(), ownsDevice: true);
        var qkv = pair.Floats(new float[3 * 2 * 48]);
        var output = pair.FloatOutput(2 * 48);
        var keyMean = pair.FloatOutput(48);
        var error = Assert.Throws<NotSupportedException>(() => pair.Device.Attention(qkv.Device, null, 1, 1, 2, 48, output.Device, keyMean.Device, null));
        Assert.Contains("48", error.Message);
    }

    [Fact]
    public void LimitsAreCheckedOnTheHost()
    {
        using var pair = new OpCheckPair(BackendPair.CreateGpu(), ownsDevice: true);
        var gpu = pair.Device;
        var metric = pair.Floats(new float[2 * 65 * 8]);
        var dest = pair.IntOutput(2 * 65);
        var counts = pair.IntOutput(2);
        Assert.Throws<ArgumentException>(() => gpu.GridComponents(metric.Device, 2, 65, 8, 1, 8, 7, 0.5f, dest.Device, counts.Device));
        var big = pair.Floats(new float[4097 * 2]);
        var bigDest = pair.IntOutput(4097);
        Assert.Throws<NotSupportedException>(() => gpu.GridComponents(big.Device, 1, 4097, 2, 0, 1, 4097, 0.5f, bigDest.Device, counts.Device));
        var role = pair.Ints(new int[2 * 65]);
        Assert.Throws<NotSupportedException>(() => gpu.AssignToMostSimilar(pair.Floats(new float[2 * 65 * 192]).Device, role.Device, 2, 65, 192, 0, dest.Device));
        var smallDest = pair.Ints(new int[10]);
        Assert.Throws<ArgumentException>(() => gpu.AssignToMostSimilar(metric.Device, role.Device, 2, 65, 8, 0, smallDest.Device));
    }
}
