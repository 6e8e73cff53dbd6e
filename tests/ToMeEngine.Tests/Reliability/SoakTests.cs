using ToMe.Backends.Cuda;
using ToMe.Imaging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Reliability;

/// <summary>
/// Soak tests measure process-wide counters (and the GPU fault tests count device allocations and lose the context), so
/// they run alone, after the parallel tests.
/// </summary>
[CollectionDefinition(nameof(SoakCollection), DisableParallelization = true)]
public sealed class SoakCollection;

/// <summary>
/// Long runs that would expose leaks: thousands of classifications on one engine and hundreds of engines created
/// and disposed, with managed memory, open files, threads and mapped files measured before and after.
/// <c>TOME_SOAK_SCALE=N</c> multiplies the counts for a longer run.
/// </summary>
[Collection(nameof(SoakCollection))]
public sealed class SoakTests(ITestOutputHelper output)
{
    private static int Scale => int.TryParse(Environment.GetEnvironmentVariable("TOME_SOAK_SCALE"), out var s) && s > 0 ? s : 1;

    private sealed record Snapshot(long Managed, int Files, int Threads, IReadOnlySet<string> Mapped, int FixtureMaps)
    {
        public override string ToString() => $"managed {Managed / 1024} KiB, {Files} fds, {Threads} threads, {Mapped.Count} mapped files ({FixtureMaps} mappings of the model)";
    }

    private static Snapshot Take(string modelPath)
    {
        long managed = ResourceProbe.ManagedBytes();
        var maps = ResourceProbe.MappedFiles();
        return new Snapshot(managed, ResourceProbe.OpenFiles(), ResourceProbe.Threads(), maps.ToHashSet(), maps.Count(m => m == modelPath));
    }

    private void Soak(BackendKind backend, int classifications, int engines)
    {
        var modelPath = Path.GetFullPath(Fixtures.ModelPath("vit_p14_d3"));
        var jpeg = File.ReadAllBytes(GoodEngine.GoodImage);
        var small = new RgbImage(24, 16, Enumerable.Range(0, 24 * 16 * 3).Select(i => (byte)(i * 11)).ToArray());
        var options = new EngineOptions { Backend = backend, MaxBatchSize = 4 };
        IReadOnlyList<Prediction> expected;

        // Warm-up does one of everything, so JIT, pools and lazily built tables are already in the baseline.
        using (var warm = ToMeEngine.Load(modelPath, options))
        {
            expected = warm.Classify(jpeg);
            warm.Classify(small);
            warm.ClassifyBatch([small, small, small, small, small]);
        }
        var before = Take(modelPath);
        output.WriteLine($"before: {before}");
        Assert.Equal(0, before.FixtureMaps);

        // Caches (the thread pool's, the JIT's) fill during the first half; a leak keeps growing through the second.
        Snapshot half, full;
        using (var engine = ToMeEngine.Load(modelPath, options))
        {
            for (int i = 0; i < classifications / 2; i++)
                Classify(engine, i);
            half = Take(modelPath);
            for (int i = classifications / 2; i < classifications; i++)
                Classify(engine, i);
            full = Take(modelPath);
        }
        output.WriteLine($"after {classifications / 2} / {classifications} classifications: {half} / {full}");
        Assert.True(full.Managed - half.Managed < 1L << 20, $"managed memory grew from {half.Managed} to {full.Managed} bytes over {classifications / 2} classifications");

        Snapshot halfEngines = full;
        for (int i = 0; i < engines; i++)
        {
            using (var engine = ToMeEngine.Load(modelPath, options))
            {
                if (i % 10 == 0)
                    Assert.True(expected.SequenceEqual(engine.Classify(jpeg)), $"engine {i} classifies differently");
            }
            if (i == engines / 2 - 1)
                halfEngines = Take(modelPath);
        }
        var after = Take(modelPath);
        output.WriteLine($"after {engines / 2} / {engines} engines: {halfEngines} / {after}");
        Assert.True(after.Managed - halfEngines.Managed < 2L << 20, $"managed memory grew from {halfEngines.Managed} to {after.Managed} bytes over {engines / 2} engines");

        void Classify(ToMeEngine engine, int i)
        {
            var result = i % 4 == 0 ? engine.Classify(jpeg) : engine.Classify(small);
            if (i % 4 == 0)
                Assert.True(expected.SequenceEqual(result), $"classification {i} changed");
        }

        Assert.True(after.Managed - before.Managed < 24L << 20, $"managed memory grew from {before.Managed} to {after.Managed} bytes");
        if (!ResourceProbe.Available)
            return;
        Assert.Equal(0, after.FixtureMaps);
        Assert.True(after.Files - before.Files <= 4, $"open files grew from {before.Files} to {after.Files}");
        // The thread pool may add a few workers under load; a thread per engine would be hundreds.
        Assert.True(after.Threads - before.Threads <= 8, $"threads grew from {before.Threads} to {after.Threads}");
        // Assemblies and native libraries load once and stay; any other newly mapped file is a leaked mapping.
        var leaked = after.Mapped.Except(before.Mapped).Where(f => !f.EndsWith(".dll", StringComparison.Ordinal) && !f.Contains(".so", StringComparison.Ordinal)).ToList();
        Assert.True(leaked.Count == 0, $"files still mapped: {string.Join(", ", leaked)}");
    }

    [Fact]
    public void CpuEngineStaysFlat() => Soak(BackendKind.Cpu, 1000 * Scale, 200 * Scale);

    /// <summary>
    /// Thousands of forwards of a tiny model at batches 1 to 3 on one CUDA engine: device memory stays flat (live
    /// allocations counted by the emulated device, free memory on a GPU) and results do not change. On the emulated
    /// device 2000 forwards (about 30 s of CPU), 10 000 on a GPU; TOME_SOAK_SCALE multiplies both.
    /// </summary>
    [Fact]
    public void CudaForwardsKeepDeviceMemoryFlat()
    {
        GpuRequirement.RequireDevice();
        int forwards = (CudaDriver.IsEmulated ? 2000 : 10_000) * Scale;
        using var engine = ToMeEngine.Create(Cuda.GpuFaultTests.TinyModel(), new EngineOptions { Backend = BackendKind.Cuda, MaxBatchSize = 3 });
        var images = Enumerable.Range(1, 3).Select(b => Cuda.Gpu.Random(b * 3 * 32 * 32, seed: b)).ToArray();
        // Warm-up: every batch size twice, so the workspace, scratch, cuBLAS's workspace and both slots of the input
        // stager (which alternate) have their final sizes, and every batch's forward has been captured.
        var expected = Enumerable.Range(1, 3).Select(b => engine.Logits(images[b - 1], b)).ToArray();
        for (int b = 1; b <= 3; b++)
            Assert.True(expected[b - 1].SequenceEqual(engine.Logits(images[b - 1], b)), $"the second forward at batch {b} changed the logits");
        var before = DeviceMemory();
        output.WriteLine($"after warm-up: {before}");
        for (int i = 0; i < forwards; i++)
        {
            int batch = 1 + i % 3;
            var logits = engine.Logits(images[batch - 1], batch);
            if (i % 97 == 0)
                Assert.True(expected[batch - 1].SequenceEqual(logits), $"forward {i} (batch {batch}) changed the logits");
            if (i % 1000 == 999 || i == forwards - 1)
                Assert.Equal(before, DeviceMemory());
        }
        output.WriteLine($"after {forwards} forwards: {DeviceMemory()}");
    }

    /// <summary>Live allocations and bytes on the emulated device; on a GPU, the bytes in use (total less free).</summary>
    private static (long Allocations, long Bytes) DeviceMemory()
    {
        if (CudaDriver.IsEmulated)
            return EmulatedDevice.DeviceMemory();
        using var context = CudaContext.Create(0);
        var (free, total) = context.MemoryInfo();
        return (-1, total - free);
    }

    [Fact]
    public void CudaEngineStaysFlat()
    {
        GpuRequirement.RequireDevice();
        // The emulated device runs kernels on the CPU, a thousand times slower: fewer rounds, the same checks.
        if (CudaDriver.IsEmulated)
            Soak(BackendKind.Cuda, 40 * Scale, 8 * Scale);
        else
            Soak(BackendKind.Cuda, 2000 * Scale, 100 * Scale);
    }
}
