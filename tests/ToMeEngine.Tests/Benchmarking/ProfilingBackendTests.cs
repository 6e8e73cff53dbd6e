using System.Diagnostics;
using ToMe.Backends.Cpu;
using ToMe.Benchmarking;
using ToMe.Model;
using ToMe.Tests.Model;
using ToMe.Tests.Support;

namespace ToMe.Tests.Benchmarking;

/// <summary>
/// The profiler runs a batch as the wrapped backend does (images in parallel, one per thread), so its table describes the
/// benchmarked path: it changes no result, and it counts every op of every image on whichever thread ran it.
/// </summary>
public sealed class ProfilingBackendTests
{
    [Theory]
    [InlineData("tome", 2, 3)]  // two images in parallel, then one as a batch
    [InlineData("tome", 2, 4)]
    [InlineData("kth", 3, 5)]
    [InlineData("none", 2, 2)]
    public void ProfiledImagesInParallelMatchTheUnprofiledRunAndCountEveryOp(string strategy, int threads, int batch)
    {
        var weights = Fixtures.Model("vit_p14_d3");
        var config = weights.Config;
        int perImage = 3 * config.ImageSize * config.ImageSize;
        var random = new Random(batch * 17 + threads);
        var images = new float[batch * perImage];
        for (int i = 0; i < images.Length; i++)
            images[i] = (float)(random.NextDouble() * 4 - 2);
        var options = WorkspaceReuseTests.Options(strategy);

        using var cpu = new CpuBackend(maxThreads: threads);
        using var plain = new ForwardPass(cpu, weights);
        var want = plain.Run(images, batch, options);

        using var profiler = new ProfilingBackend(cpu, config);
        Assert.Equal(threads, profiler.ImageConcurrency);
        using var pass = new ForwardPass(profiler, weights);
        pass.Run(images, batch, options);
        profiler.Reset();
        long start = Stopwatch.GetTimestamp();
        const int forwards = 2;
        ForwardResult got = null!;
        for (int i = 0; i < forwards; i++)
            got = pass.Run(images, batch, options);
        double wall = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        Assert.Equal(want.Logits, got.Logits);
        Assert.Equal(want.TokensPerLayer, got.TokensPerLayer);
        Assert.Equal(threads, profiler.SummedThreads);
        var profile = profiler.Report(forwards, wall);

        // Every image issues the ops one image alone issues (the remainder's batch issues them once for its images).
        using var serial = new CpuBackend(maxThreads: 1);
        using var oneProfiler = new ProfilingBackend(serial, config);
        using var one = new ForwardPass(oneProfiler, weights);
        one.Run(images.AsSpan(0, perImage), 1, options);
        Assert.Equal(1, oneProfiler.SummedThreads);
        var alone = oneProfiler.Report(1, 1).Where(o => !o.Op.StartsWith("outside", StringComparison.Ordinal)).ToDictionary(o => o.Op, o => o.CallsPerForward);
        int groups = batch - batch % threads + (batch % threads > 0 ? 1 : 0);
        var ops = profile.Where(o => !o.Op.StartsWith("outside", StringComparison.Ordinal)).ToList();
        Assert.Equal(alone.Keys.Order(), ops.Select(o => o.Op).Order());
        foreach (var op in ops)
        {
            Assert.Equal(groups * alone[op.Op], op.CallsPerForward);
            Assert.True(op.MillisecondsPerForward >= 0, op.Op);
        }
        // Thread-time: the ops' times add up to at most the forwards' wall time × threads, and the shares to 100%.
        Assert.True(ops.Sum(o => o.MillisecondsPerForward) <= wall * threads / forwards * 1.001);
        Assert.Equal(100, profile.Sum(o => o.PercentOfForward), 6);
    }

    [Fact]
    public void ThreadCpuTimeChangesNoResultAndChargesNoMoreThanTheWallTime()
    {
        Assert.SkipUnless(ThreadCpuClock.IsAvailable, "thread CPU time is read on Linux only");
        var weights = Fixtures.Model("vit_p14_d3");
        var config = weights.Config;
        int batch = 4, threads = 2;
        var random = new Random(5);
        var images = new float[batch * 3 * config.ImageSize * config.ImageSize];
        for (int i = 0; i < images.Length; i++)
            images[i] = (float)(random.NextDouble() * 4 - 2);
        var options = WorkspaceReuseTests.Options("tome");
        using var cpu = new CpuBackend(maxThreads: threads);
        using var plain = new ForwardPass(cpu, weights);
        var want = plain.Run(images, batch, options);

        using var profiler = new ProfilingBackend(cpu, config, threadTime: true);
        using var pass = new ForwardPass(profiler, weights);
        pass.Run(images, batch, options);
        profiler.Reset();
        long start = Stopwatch.GetTimestamp();
        var got = pass.Run(images, batch, options);
        double wall = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        Assert.Equal(want.Logits, got.Logits);
        var profile = profiler.Report(1, wall);
        var ops = profile.Where(o => !o.Op.StartsWith("outside", StringComparison.Ordinal)).ToList();
        Assert.Contains(ops, o => o.Op == "linear qkv" && o.MillisecondsPerForward > 0);
        Assert.All(ops, o => Assert.True(o.MillisecondsPerForward >= 0, o.Op));
        // CPU time of one thread never exceeds its wall time: the ops fit in the forward's wall time × threads.
        Assert.True(ops.Sum(o => o.MillisecondsPerForward) <= wall * profiler.SummedThreads * 1.001);
        Assert.Equal(100, profile.Sum(o => o.PercentOfForward), 6);
    }

    [Fact]
    public void ABatchOnOneThreadIsProfiledAsWallTime()
    {
        var weights = Fixtures.Model("vit_p14_d3");
        var images = new float[2 * 3 * weights.Config.ImageSize * weights.Config.ImageSize];
        using var cpu = new CpuBackend(maxThreads: 1);
        using var profiler = new ProfilingBackend(cpu, weights.Config);
        using var pass = new ForwardPass(profiler, weights);
        pass.Run(images, 2, WorkspaceReuseTests.Options("tome"));
        Assert.Equal(1, profiler.SummedThreads);
        Assert.Equal(1, profiler.Report(1, 1).Single(o => o.Op == "patch embed").CallsPerForward);
    }
}
