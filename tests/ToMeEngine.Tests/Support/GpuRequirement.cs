using ToMe.Backends.Cuda;

namespace ToMe.Tests.Support;

/// <summary>
/// CUDA tests need a device: a GPU, or by default the emulated CUDA device (see <see cref="EmulatedDevice"/>). They skip
/// with the reason when none is usable. On a GPU machine set <c>TOME_REQUIRE_GPU=1</c>: the same condition then fails the
/// test instead of skipping it, and so does finding the emulator where a GPU is required.
/// </summary>
internal static class GpuRequirement
{
    public static bool Required => Environment.GetEnvironmentVariable("TOME_REQUIRE_GPU") is "1" or "true";

    /// <summary>CI sets TOME_REQUIRE_EMULATOR=1: a CUDA test that would skip for want of a device (or of the emulator) fails.</summary>
    public static bool EmulatorRequired => Environment.GetEnvironmentVariable("TOME_REQUIRE_EMULATOR") is "1" or "true";

    public static void SkipOrFail(string reason)
    {
        if (Required)
            Assert.Fail($"TOME_REQUIRE_GPU is set but {reason}");
        if (EmulatorRequired)
            Assert.Fail($"TOME_REQUIRE_EMULATOR is set but {reason}");
        Assert.Skip(reason);
    }

    /// <summary>A usable CUDA device (the emulator counts unless TOME_REQUIRE_GPU=1), or a skip or failure naming why not.</summary>
    public static void RequireDevice()
    {
        if (!CudaDriver.TryInitialize(out var reason))
            SkipOrFail(reason);
        if (Required && CudaDriver.IsEmulated)
            Assert.Fail($"TOME_REQUIRE_GPU is set but the CUDA driver loaded is the emulated device ({CudaDriver.EmulatorDescription}); " +
                "point TOME_CUDA_LIB_DIR at the GPU driver's libraries");
    }

    /// <summary>For what only hardware shows (timing, a real device's memory, the real driver): a skip on the emulated device.</summary>
    public static void RequireRealGpu(string why)
    {
        RequireDevice();
        if (CudaDriver.IsEmulated)
            Assert.Skip($"needs a real GPU: {why}");
    }
}
