using System.Diagnostics;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The emulated CUDA device's execution model: thread orders, barriers and warp collectives as rendezvous that report
/// misuse (never hang), poisoned shared memory, memory faults, device limits, and the PTX twins.
/// </summary>
public class EmulatorExecutionTests
{
    private const uint Poison = 0x7fbadbad;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void MissingBarrierShowsInEveryThreadOrder(int order)
    {
        using var k = new EmulatorCheckKernels();
        EmulatorCheckKernels.SetThreadOrder(order, seed: 7);
        const int n = 256;
        var input = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var expected = Enumerable.Range(0, n).Select(i => (float)((i + 1) % n)).ToArray();
        var x = k.Upload(input);
        var y = k.Allocate<float>(n);
        k.Run("neighbour_through_shared", 1, n, new KernelArgs().Add(x).Add(y).Add(1));
        Assert.Equal(expected, k.Download(y));
        k.Run("neighbour_through_shared", 1, n, new KernelArgs().Add(x).Add(y).Add(0));
        var stale = k.Download(y).Where((v, i) => !v.Equals(expected[i])).ToArray();
        Assert.NotEmpty(stale);
        Assert.All(stale, v => Assert.Equal(Poison, BitConverter.SingleToUInt32Bits(v)));
    }

    [Fact]
    public void ThreadOrdersAreForwardReverseAndSeededRandom()
    {
        using var k = new EmulatorCheckKernels();
        const int n = 64;
        var order = k.Allocate<int>(n);
        int[] Run(int kind, ulong seed)
        {
            EmulatorCheckKernels.SetThreadOrder(kind, seed);
            k.Run("run_order", 1, n, new KernelArgs().Add(order));
            return k.Download(order);
        }
        Assert.Equal(Enumerable.Range(0, n), Run(0, 0));
        Assert.Equal(Enumerable.Range(0, n).Reverse(), Run(1, 0));
        var random = Run(2, 1);
        Assert.Equal(Enumerable.Range(0, n), random.Order());
        Assert.NotEqual(Enumerable.Range(0, n), random);
        Assert.Equal(random, Run(2, 1));
        Assert.NotEqual(random, Run(2, 2));
    }

    [Fact]
    public void BarrierNotAllThreadsReachIsAnError()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(128);
        k.Fails("barrier_in_divergent_code", 1, 128, new KernelArgs().Add(y), "is reached by 32 of 128 threads; threads 32-127 exited without reaching it");
    }

    [Fact]
    public void ThreadsAtDifferentBarriersAreAnError()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(64);
        k.Fails("two_different_barriers", 1, 64, new KernelArgs().Add(y), "wait at different barriers (a barrier in divergent code)");
    }

    [Fact]
    public void ShuffleWhoseMaskLeavesOutTheCallerIsAnError()
    {
        using var k = new EmulatorCheckKernels();
        var x = k.Upload(new float[32]);
        var y = k.Allocate<float>(32);
        k.Fails("shuffle_partial_mask", 1, 32, new KernelArgs().Add(x).Add(y), "whose mask does not include the calling lane");
    }

    [Fact]
    public void ShuffleNamingAnExitedLaneIsAnError()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(32);
        var error = Assert.Throws<CudaException>(() => k.Run("shuffle_after_exit", 1, 32, new KernelArgs().Add(y)));
        Assert.Matches("(which have exited|exits while lanes)", error.Message);
    }

    [Fact]
    public void FullMaskInAPartialWarpIsAnError()
    {
        using var k = new EmulatorCheckKernels();
        var x = k.Upload(new float[40]);
        var y = k.Allocate<float>(40);
        k.Fails("full_mask_in_partial_warp", 1, 40, new KernelArgs().Add(x).Add(y), "names lanes 8-31 of warp 1, which do not exist in a block of 40 threads");
        k.Run("full_mask_in_partial_warp", 1, 64, new KernelArgs().Add(k.Upload(new float[64])).Add(k.Allocate<float>(64)));
    }

    [Fact]
    public void LanesInDifferentCollectivesAreAnError()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(32);
        k.Fails("lanes_disagree", 1, 32, new KernelArgs().Add(y), "lanes disagree");
    }

    [Fact]
    public void DeadlockIsReportedWithWhereEachThreadWaits()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(32);
        var error = k.Fails("deadlock", 1, 32, new KernelArgs().Add(y), "deadlock: no thread can continue");
        Assert.Contains("threads 0 wait at __syncthreads at emulator_checks.cu:", error.Message);
        Assert.Contains("threads 1-31 wait in __shfl_sync(mask 0xffffffff) at emulator_checks.cu:", error.Message);
    }

    [Fact]
    public void SharedMemoryStartsPoisoned()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<uint>(256);
        k.Run("uninitialized_shared", 1, 256, new KernelArgs().Add(y));
        Assert.All(k.Download(y), v => Assert.Equal(Poison, v));
    }

    [Fact]
    public void DynamicSharedMemoryOverrunIsAnError()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(256);
        k.Run("dynamic_shared_write", 1, 256, new KernelArgs().Add(y).Add(0), sharedBytes: 256 * 4);
        Assert.All(k.Download(y), v => Assert.Equal(1f, v));
        k.Fails("dynamic_shared_write", 1, 256, new KernelArgs().Add(y).Add(8), "wrote past the end of the 1024 bytes of dynamic shared memory",
            sharedBytes: 256 * 4);
    }

    [Fact]
    public void ReadingPastTheEndOfAnAllocationFaults()
    {
        using var k = new EmulatorCheckKernels();
        var x = k.Upload(new float[1024]);   // 4096 bytes: the allocation ends where a page ends
        var y = k.Allocate<float>(1024);
        k.Run("copy_shifted", 4, 256, new KernelArgs().Add(x).Add(y).Add(1024).Add(0));
        k.Fails("copy_shifted", 4, 256, new KernelArgs().Add(x).Add(y).Add(1024).Add(1), "read of 0x");
        k.Fails("copy_shifted", 4, 256, new KernelArgs().Add(x).Add(y).Add(1024).Add(1), "bytes past the end of a 4096-byte device allocation");
    }

    [Fact]
    public void WritingPastTheEndOfAnAllocationIsAnError()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(100);   // 400 bytes in a 512-byte slot: the slack is checked after the kernel
        k.Run("write_count", 1, 64, new KernelArgs().Add(y).Add(100));
        k.Fails("write_count", 1, 64, new KernelArgs().Add(y).Add(101), "wrote past the end of a 400-byte allocation");
    }

    [Fact]
    public void HostAddressAsPointerParameterIsAnError()
    {
        using var k = new EmulatorCheckKernels();
        k.Fails("write_count", 1, 32, new KernelArgs().Add(0x10000UL).Add(1), "pointer parameter 0 is not device memory");
    }

    [Fact]
    public void TrapEndsTheLaunchAndTheStreamRecovers()
    {
        using var k = new EmulatorCheckKernels();
        k.Fails("trap_when_negative", 1, 32, new KernelArgs().Add(-1), "__trap()");
        k.Run("trap_when_negative", 1, 32, new KernelArgs().Add(1));
    }

    [Fact]
    public void DeviceLimitsAreEnforcedAtLaunch()
    {
        using var k = new EmulatorCheckKernels();
        var y = k.Allocate<float>(1024);
        void Invalid(Dim3 grid, Dim3 block, string kernel = "bounded_to_64", uint shared = 0) =>
            Assert.Equal((int)CuResult.ErrorInvalidValue, Assert.Throws<CudaException>(() => k[kernel].Launch(k.Stream, grid, block, shared, new KernelArgs().Add(y))).Status);
        Invalid(1, 1025);
        Invalid(1, new Dim3(1, 1, 65));
        Invalid(new Dim3(1, 65536), 32);
        Invalid(0, 32);

        var bounded = Assert.Throws<CudaException>(() => k["bounded_to_64"].Launch(k.Stream, 1, 128, 0, new KernelArgs().Add(y)));
        Assert.Equal((int)CuResult.ErrorLaunchOutOfResources, bounded.Status);
        Assert.Equal(64, k["bounded_to_64"].MaxThreadsPerBlock);

        var big = k["large_static_shared"];
        Assert.Equal(40 * 1024, big.StaticSharedBytes);
        Invalid(1, 256, "large_static_shared", 9 * 1024);   // 40 + 9 KiB > the default 48 KiB
        big.SetMaxDynamicSharedBytes(16 * 1024);
        k.Run("large_static_shared", 1, 256, new KernelArgs().Add(y), 9 * 1024);
        Assert.Throws<CudaException>(() => big.SetMaxDynamicSharedBytes(200 * 1024));   // 240 KiB in all: more than 227 KiB
    }

    [Fact]
    public void PtxTwinsMatchIndependentOraclesOnRandomData()
    {
        EmulatedDevice.Require();
        var checks = Path.Combine(EmulatedDevice.BuildDirectory!, "ptx_twin_tests");
        using var process = Process.Start(new ProcessStartInfo(checks) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, output);
        Assert.Contains(", 0 failures", output);
    }
}
