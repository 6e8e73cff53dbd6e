using ToMe.Backends.Cuda.Kernels;

namespace ToMe.Tests.Cuda;

public class PtxasInfoTests
{
    [Fact]
    public void ParsesNvrtc11Log()
    {
        const string log = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'layer_norm_f32' for 'sm_90'
            ptxas info    : Function properties for layer_norm_f32
            ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 32 registers
            """;
        var usage = Assert.Single(PtxasInfo.Parse(log));
        Assert.Equal(new KernelResourceUsage("layer_norm_f32", "sm_90", 32, 0, 0, 0, 0, 0), usage);
    }

    [Fact]
    public void ParsesSharedMemorySpillsAndSeveralFunctions()
    {
        const string log = "ptxas info    : 0 bytes gmem\r\n" +
            "ptxas info    : Compiling entry function 'attention_f16' for 'sm_86'\r\n" +
            "ptxas info    : Function properties for attention_f16\r\n" +
            "    48 bytes stack frame, 40 bytes spill stores, 36 bytes spill loads\r\n" +
            "ptxas info    : Used 255 registers, 49152 bytes smem, 380 bytes cmem[0], 8 bytes cmem[2]\r\n" +
            "ptxas info    : Compiling entry function 'merge_f32' for 'sm_86'\r\n" +
            "ptxas info    : Function properties for merge_f32\r\n" +
            "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\r\n" +
            "ptxas info    : Used 24 registers, used 1 barriers, 1024 bytes smem, 372 bytes cmem[0]\r\n";
        var usages = PtxasInfo.Parse(log);
        Assert.Equal(2, usages.Count);
        Assert.Equal(new KernelResourceUsage("attention_f16", "sm_86", 255, 49152, 48, 40, 36, 380), usages[0]);
        Assert.True(usages[0].Spills);
        Assert.Equal(new KernelResourceUsage("merge_f32", "sm_86", 24, 1024, 0, 0, 0, 372), usages[1]);
        Assert.False(usages[1].Spills);
    }

    [Fact]
    public void PropertiesBeforeEntryLineAreJoinedByName()
    {
        // Some ptxas versions print the frame line for a function before its "Compiling entry" line.
        const string log = """
            ptxas info    : Function properties for k2
                8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
            ptxas info    : Compiling entry function 'k2' for 'sm_70'
            ptxas info    : Used 12 registers, 356 bytes cmem[0]
            """;
        var usage = Assert.Single(PtxasInfo.Parse(log));
        Assert.Equal(new KernelResourceUsage("k2", "sm_70", 12, 0, 8, 4, 4, 356), usage);
    }

    [Fact]
    public void EmptyLogGivesNothing() => Assert.Empty(PtxasInfo.Parse(""));
}
