using System.Runtime.CompilerServices;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// Which lines of the next weight slice each kernel call of a packed GEMM touches (<see cref="CpuGemm.WeightPrefetch"/>);
/// that the hint changes no result is checked with the driver's other prefetch in CpuGemmTests.
/// </summary>
public sealed class CpuGemmPrefetchTests
{
    [Fact]
    public unsafe void WeightPrefetchSharesTouchTheNextSliceInOrder()
    {
        // Each micro-panel call of a panel touches its own run of the next slice's 64-byte lines (2 per k step of a
        // 32-float panel): the runs follow each other from the slice's first line without gaps or overlaps, stop at its
        // end, and cover all of it wherever one line per k step suffices. A null slice touches nothing.
        var slice = (float*)0x10000;
        Assert.Equal(0, CpuGemm.WeightPrefetch(null, 768, 0, 17).At);
        Assert.Equal(0, CpuGemm.WeightPrefetch(slice, 0, 0, 1).At); // K = 0: nothing to read
        foreach (int kc in new[] { 1, 2, 7, 64, 191, 192, 384, 700, 768 })
        {
            int lines = 2 * kc;
            for (int panels = 1; panels <= 40; panels++)
            {
                long next = 0;
                for (int ip = 0; ip < panels; ip++)
                {
                    var (at, mask) = CpuGemm.WeightPrefetch(slice, kc, ip, panels);
                    if (at == 0)
                    {
                        Assert.True(next >= lines, $"kc={kc} panels={panels} ip={ip}: stopped at line {next} of {lines}");
                        continue;
                    }
                    int every = mask + 1;
                    Assert.True(every is 1 or 2 or 4 or 8, $"kc={kc} panels={panels}: every {every}");
                    long first = ((long)at - (long)slice) / 64;
                    Assert.Equal(next, first);
                    Assert.Equal(0, ((long)at - (long)slice) % 64);
                    next = first + (kc + every - 1) / every;
                }
                Assert.True(next >= Math.Min(lines, (long)panels * kc), $"kc={kc} panels={panels}: {next} of {lines} lines touched");
            }
        }
    }
}
