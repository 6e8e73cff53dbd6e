using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Graphs;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cuda;

/// <summary>
/// CUDA graphs and staged copies (<see cref="CudaGraphBackend"/>): replays give, to the bit, what the same forwards give
/// launched op by op, for every merge variant, several batches and fresh inputs; a captured forward allocates,
/// synchronizes and loads nothing (the emulated device's log of entry points); the overlapped upload of the next batch
/// keeps results and order; nothing leaks across many forwards, evictions and re-captures.
/// </summary>
public class CudaGraphTests
{
    private static readonly string[] Strategies = ["none", "tome13", "ramp", "cis", "kth2", "random7", "tomato"];

    // Every variant on one model; the distilled model (two prefix tokens, a two-token head) with ToMe and random.
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var strategy in Strategies)
            data.Add("vit_p14_d3", strategy);
        data.Add("deit_t4_distilled", "tome13");
        data.Add("deit_t4_distilled", "random7");
        return data;
    }

    internal static ForwardOptions Options(string strategy) => strategy switch
    {
        "none" => new ForwardOptions { Strategy = MergeStrategy.None },
        "tome13" => new ForwardOptions { Schedule = MergeSchedule.Constant(13) },
        "ramp" => new ForwardOptions { Schedule = MergeSchedule.Ramp(16, -0.5), ReturnTokens = true },
        "cis" => new ForwardOptions { Strategy = MergeStrategy.Cis, Schedule = MergeSchedule.Constant(8), ReturnMerges = false },
        "kth2" => new ForwardOptions { Strategy = MergeStrategy.Kth(2) },
        "random7" => new ForwardOptions { Strategy = MergeStrategy.Random(7), Schedule = MergeSchedule.Constant(8) },
        "tomato" => new ForwardOptions { Strategy = MergeStrategy.ToMato(0.9f) },
        _ => throw new ArgumentException(strategy),
    };

    internal static CudaGraphBackend Graphs(int capacity = 8) => new(BackendPair.CreateGpu(), capacity);

    internal static float[] Images(ModelWeights weights, int batch, int seed) =>
        Gpu.Random(batch * 3 * weights.Config.ImageSize * weights.Config.ImageSize, seed);

    private static void AssertSame(ForwardResult expected, ForwardResult actual, string what)
    {
        Assert.True(expected.Logits.SequenceEqual(actual.Logits), $"{what}: logits differ");
        Assert.True(expected.Size.SequenceEqual(actual.Size), $"{what}: sizes differ");
        Assert.True(expected.Groups.SequenceEqual(actual.Groups), $"{what}: groups differ");
        Assert.Equal(expected.TokensPerLayer, actual.TokensPerLayer);
        Assert.Equal(expected.FinalTokens, actual.FinalTokens);
        Assert.Equal(expected.Tokens is null, actual.Tokens is null);
        if (expected.Tokens is not null)
            Assert.True(expected.Tokens.SequenceEqual(actual.Tokens!), $"{what}: tokens differ");
    }

    /// <summary>
    /// Batch 3 then 1, three fresh inputs each (the warm-up, the capture and its replay, a replay), then batch 3 again (a
    /// replay of the first graph with another input), each against the same input launched op by op without graphs.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void ReplayIsBitIdenticalToUncapturedRuns(string model, string strategy)
    {
        var weights = Fixtures.Model(model);
        if (strategy == "cis" && !weights.Config.ClassToken)
            Assert.Skip($"{model} has no class token");
        var options = Options(strategy);
        using var plain = BackendPair.CreateGpu();
        using var graphs = Graphs();
        using var reference = new ForwardPass(plain, weights);
        using var pass = new ForwardPass(graphs, weights);
        int seed = 100;
        foreach (var (batch, calls) in new[] { (3, 3), (1, 3), (3, 1) })
            for (int call = 0; call < calls; call++)
            {
                var images = Images(weights, batch, seed++);
                AssertSame(reference.Run(images, batch, options), pass.Run(images, batch, options), $"{model} {strategy} batch {batch} call {call}");
            }
        var stats = graphs.Statistics;
        if (strategy == "tomato")
        {
            Assert.Equal(0, stats.Captures);
            Assert.Equal(7, stats.Uncaptured);
        }
        else
        {
            Assert.True(stats.Failures == 0, stats.LastFailure);
            Assert.Equal(0, stats.Uncaptured);
            // Batch 3 and batch 1 each warm up once and capture once; the last batch-3 call replays the first's graph.
            Assert.Equal(2, stats.Warmups);
            Assert.Equal(2, stats.Captures);
            Assert.Equal(5, stats.Replays);
        }
    }

    private static readonly string[] Allocation = ["cuMemAlloc", "cuMemAllocAsync", "cuMemFree", "cuMemFreeAsync", "cuMemHostAlloc", "cuMemFreeHost"];
    private static readonly string[] HostSynchronization =
        ["cuStreamSynchronize", "cuCtxSynchronize", "cuEventSynchronize", "cuMemcpyHtoD", "cuMemcpyDtoH", "cuMemcpyDtoD", "cuMemsetD8", "cuMemsetD32"];
    private static readonly string[] Loading = ["cuModuleLoadData", "cuModuleUnload", "cuModuleGetFunction", "cuFuncSetAttribute"];

    internal static int Count(IEnumerable<string> log, string api) => log.Count(call => call == api);

    private static void AssertNone(IReadOnlyList<string> log, string[] apis, string what)
    {
        var found = log.Where(apis.Contains).Distinct().ToList();
        Assert.True(found.Count == 0, $"{what} calls {string.Join(", ", found)}");
    }

    /// <summary>
    /// The emulated device logs every entry point the engine calls. Between cuStreamBeginCapture and cuStreamEndCapture:
    /// kernels and GEMMs, and no allocation, no host synchronization, no module load. A replayed forward: one graph
    /// launch, no kernel launched by itself, no allocation or module load, and one wait for the results.
    /// </summary>
    [Theory]
    [InlineData("tome13")]
    [InlineData("random7")]
    public void CapturedForwardAllocatesSynchronizesAndCompilesNothing(string strategy)
    {
        EmulatedDevice.Require();
        var weights = Fixtures.Model("vit_p14_d3");
        var options = Options(strategy);
        using var graphs = Graphs();
        using var pass = new ForwardPass(graphs, weights);
        pass.Run(Images(weights, 2, 1), 2, options); // the warm-up
        EmulatedDevice.LogCalls(true);
        try
        {
            pass.Run(Images(weights, 2, 2), 2, options); // capture, then replay
            var log = EmulatedDevice.TakeCallLog();
            int begin = Array.IndexOf(log, "cuStreamBeginCapture"), end = Array.IndexOf(log, "cuStreamEndCapture");
            Assert.True(begin >= 0 && end > begin, "no capture in the second forward");
            var captured = log[(begin + 1)..end];
            AssertNone(captured, Allocation, "the captured forward");
            AssertNone(captured, HostSynchronization, "the captured forward");
            AssertNone(captured, Loading, "the captured forward");
            Assert.True(Count(captured, "cuLaunchKernel") > 10, "the capture holds the forward's kernels");
            Assert.Contains(captured, call => call.StartsWith("cublasGemmStridedBatchedEx", StringComparison.Ordinal));
            Assert.Contains("cuMemcpyDtoHAsync", captured);

            pass.Run(Images(weights, 2, 3), 2, options); // a replay
            var replay = EmulatorCalls(EmulatedDevice.TakeCallLog());
            Assert.True(Count(replay, "cuGraphLaunch") == 1, $"{graphs.Statistics}: {string.Join(" ", replay.Distinct())}");
            Assert.Equal(0, Count(replay, "cuLaunchKernel"));
            Assert.DoesNotContain(replay, call => call.StartsWith("cublas", StringComparison.Ordinal));
            AssertNone(replay, Allocation, "a replayed forward");
            AssertNone(replay, Loading, "a replayed forward");
            Assert.Equal(1, Count(replay, "cuStreamSynchronize"));
            Assert.Equal(0, Count(replay, "cuMemcpyHtoD") + Count(replay, "cuMemcpyDtoH") + Count(replay, "cuCtxSynchronize"));
        }
        finally
        {
            EmulatedDevice.LogCalls(false);
        }
        Assert.Equal(0, graphs.Statistics.Failures);
    }

    // cuCtxSetCurrent and cuStreamIsCapturing are bookkeeping, not work.
    private static List<string> EmulatorCalls(string[] log) => log.Where(call => call is not ("cuCtxSetCurrent" or "cuCtxGetCurrent")).ToList();

    /// <summary>
    /// Four batches, each forward given the next batch's images: its upload runs on the copy stream while the forward
    /// runs. The emulated device reports any access of the two streams to the same memory without an event between
    /// them, every time; the results equal one-by-one forwards under three thread orders, with graphs and without.
    /// </summary>
    [Theory]
    [InlineData(8, 1UL)]
    [InlineData(8, 2UL)]
    [InlineData(0, 3UL)]
    public void OverlappedUploadsKeepResultsAndOrder(int capacity, ulong seed)
    {
        var weights = Fixtures.Model("deit_t4_distilled");
        var options = Options("tome13");
        const int batch = 2;
        var batches = Enumerable.Range(0, 4).Select(i => Images(weights, batch, 200 + i)).ToArray();
        using var plain = BackendPair.CreateGpu();
        using var reference = new ForwardPass(plain, weights);
        var expected = batches.Select(images => reference.Run(images, batch, options)).ToArray();

        using var graphs = Graphs(capacity);
        using var pass = new ForwardPass(graphs, weights);
        if (CudaDriver.IsEmulated)
            EmulatorCheckKernels.SetThreadOrder(2, seed);
        try
        {
            for (int i = 0; i < batches.Length; i++)
            {
                var next = i + 1 < batches.Length ? batches[i + 1] : default(ReadOnlySpan<float>);
                AssertSame(expected[i], pass.Run(batches[i], batch, options, null, next), $"batch {i}");
            }
        }
        finally
        {
            if (CudaDriver.IsEmulated)
                EmulatorCheckKernels.SetThreadOrder(-1);
        }
        var stats = graphs.Statistics;
        Assert.Equal(batches.Length - 1, stats.Prefetched);
        Assert.Equal(capacity > 0 ? 1 : 0, stats.Captures);

        // A different array than the one announced is uploaded afresh, never taken for the staged one.
        var other = Images(weights, batch, 300);
        pass.Run(batches[0], batch, options, null, batches[1]);
        AssertSame(reference.Run(other, batch, options), pass.Run(other, batch, options), "an unannounced batch");
    }

    /// <summary>The engine option turns graphs off: every forward runs op by op, with the same results.</summary>
    [Fact]
    public void EngineOptionTurnsGraphsOff()
    {
        var weights = Fixtures.Model("vit_p14_d3");
        BackendPair.CreateGpu().Dispose(); // skips (or fails) without a device
        var options = new EngineOptions { Backend = BackendKind.Cuda, Schedule = MergeSchedule.Constant(13), MaxBatchSize = 2 };
        var images = Images(weights, 2, 9);
        using var on = ToMeEngine.Create(weights, options);
        using var off = ToMeEngine.Create(weights, options with { CudaGraphs = false });
        for (int i = 0; i < 3; i++)
            Assert.Equal(off.Logits(images, 2), on.Logits(images, 2));
        Assert.Equal(1, on.CudaGraphStatistics!.Captures);
        Assert.Equal(0, off.CudaGraphStatistics!.Captures);
        Assert.Equal(3, off.CudaGraphStatistics!.Uncaptured);
    }
}

/// <summary>
/// <see cref="CudaGraphTests"/>' leak check. It compares the device's free memory between rounds, which is process-wide,
/// so it runs alone (no other test allocating beside it).
/// </summary>
[Collection(nameof(Reliability.SoakCollection))]
public class CudaGraphLeakTests
{
    /// <summary>
    /// Many forwards over more keys than the cache holds (evictions, re-captures) and a larger batch (a new workspace,
    /// which drops every graph): device memory is flat between rounds, at most the cache's capacity of graphs is kept,
    /// and once disposed every graph, pinned buffer, event, stream and allocation the engine made is released.
    /// </summary>
    [Fact]
    public void NothingLeaksAcrossManyForwards()
    {
        EmulatedDevice.Require();
        var weights = Fixtures.Model("vit_p14_d3");
        string[] keys = ["tome13", "kth2", "random7"];
        EmulatedDevice.LogCalls(true);
        string[] log;
        try
        {
            using (var graphs = CudaGraphTests.Graphs(capacity: 2))
            {
                using var pass = new ForwardPass(graphs, weights);
                var images = CudaGraphTests.Images(weights, 2, 5);
                long? free = null;
                for (int round = 0; round < 3; round++)
                {
                    // Each key twice (warm-up, capture): three keys in a cache of two evict each other every round.
                    foreach (var key in keys)
                        for (int call = 0; call < 2; call++)
                            pass.Run(images, 2, CudaGraphTests.Options(key));
                    if (round == 0)
                        pass.Run(CudaGraphTests.Images(weights, 3, 6), 3, CudaGraphTests.Options("tome13"));
                    Assert.True(graphs.Statistics.CachedGraphs <= 2);
                    if (round >= 1)
                    {
                        var now = graphs.Cuda.Context.MemoryInfo().Free;
                        Assert.True(free is null || free == now, $"device memory went from {free} to {now} free bytes");
                        free = now;
                    }
                }
                Assert.True(graphs.Statistics.Captures > keys.Length, "the rounds re-captured evicted forwards");
            }
            log = EmulatedDevice.TakeCallLog();
        }
        finally
        {
            EmulatedDevice.LogCalls(false);
        }
        // Over the backend's whole life: everything made was released.
        Assert.True(CudaGraphTests.Count(log, "cuMemHostAlloc") > 2, "pinned staging was used");
        Assert.Equal(CudaGraphTests.Count(log, "cuMemHostAlloc"), CudaGraphTests.Count(log, "cuMemFreeHost"));
        Assert.Equal(CudaGraphTests.Count(log, "cuStreamEndCapture"), CudaGraphTests.Count(log, "cuGraphDestroy"));
        Assert.Equal(CudaGraphTests.Count(log, "cuGraphInstantiateWithFlags"), CudaGraphTests.Count(log, "cuGraphExecDestroy"));
        Assert.Equal(CudaGraphTests.Count(log, "cuEventCreate"), CudaGraphTests.Count(log, "cuEventDestroy"));
        Assert.Equal(CudaGraphTests.Count(log, "cuStreamCreate"), CudaGraphTests.Count(log, "cuStreamDestroy"));
        Assert.Equal(CudaGraphTests.Count(log, "cuMemAlloc") + CudaGraphTests.Count(log, "cuMemAllocAsync"), CudaGraphTests.Count(log, "cuMemFree") + CudaGraphTests.Count(log, "cuMemFreeAsync"));
    }
}
