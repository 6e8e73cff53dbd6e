using ToMe.Backends.Checks;

namespace ToMe.Tests.Cuda;

/// <summary>
/// Every op of the CUDA backend against its CPU twin: the library's op checks (the same ones <c>tome kernels test</c> runs
/// on a user's device), one test each, plus the limits the backend checks on the host.
/// </summary>
public class CudaOpCheckTests
{
    public static TheoryData<string> Checks() => [.. OpChecks.All.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Checks))]
    public void MatchesCpu(string check)
    {
        using var gpu = BackendPair.CreateGpu();
        var result = OpChecks.Run(OpChecks.Find(check), gpu);
        Assert.True(result.Passed, $"{check}: {result.Failure}");
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
