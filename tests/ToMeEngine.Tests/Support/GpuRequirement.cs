namespace ToMe.Tests.Support;

/// <summary>
/// GPU tests skip with the reason when no CUDA device is usable. On a GPU machine set
/// <c>TOME_REQUIRE_GPU=1</c>: the same condition then fails the test instead of skipping it.
/// </summary>
internal static class GpuRequirement
{
    public static bool Required => Environment.GetEnvironmentVariable("TOME_REQUIRE_GPU") is "1" or "true";

    public static void SkipOrFail(string reason)
    {
        if (Required)
            Assert.Fail($"TOME_REQUIRE_GPU is set but {reason}");
        Assert.Skip(reason);
    }
}
