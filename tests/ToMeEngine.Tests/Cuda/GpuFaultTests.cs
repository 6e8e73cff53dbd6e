using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Serving;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// What the engine does when the GPU fails it: out of memory at load, in the workspace of a new batch size, in an op's
/// scratch memory or in cuBLAS's workspace (each allocation made to fail in turn on the emulated device); an absurd batch;
/// an illegal address that loses the context. Every failure names what failed, leaves no allocation behind and no
/// later result changed, and the engine (or, after a lost context, a new engine) runs on.
/// </summary>
[Collection(nameof(Reliability.SoakCollection))] // counts the device's live allocations and may lose the context: runs alone
public sealed class GpuFaultTests(ITestOutputHelper output)
{
    /// <summary>Two blocks, 17 tokens of width 32: milliseconds per forward on the emulated device.</summary>
    internal static ModelWeights TinyModel() => ModelWeights.Random(ModelConfigReader.FromArchitectureName("vit_tiny_patch16_224") with
    {
        Architecture = "tiny_fault",
        ImageSize = 32,
        PatchSize = 8,
        EmbedDim = 32,
        NumHeads = 1,
        Depth = 2,
        MlpHidden = 64,
        NumClasses = 10,
        Preprocess = new ToMe.Imaging.PreprocessConfig { ImgSize = 32 },
    }, seed: 7);

    private static readonly EngineOptions Cuda = new() { Backend = BackendKind.Cuda, MaxBatchSize = 4, Schedule = MergeSchedule.Constant(2) };

    private static float[] Images(int batch, int seed = 3) => Gpu.Random(batch * 3 * 32 * 32, seed);

    private static float[] Reference(ModelWeights weights, int batch)
    {
        using var engine = ToMeEngine.Create(weights, Cuda);
        return engine.Logits(Images(batch), batch);
    }

    /// <summary>Every allocation of loading the weights fails in turn: the load fails naming it, leaves nothing allocated, and the next load works.</summary>
    [Fact]
    public void WeightsThatDoNotFitFailTheLoadAndLeaveNothingBehind()
    {
        var weights = TinyModel();
        var expected = Reference(weights, 2);
        // Another holder of the context keeps it alive, so a leak is not hidden by the context's reset.
        using var holder = Gpu.Context();
        EmulatedDevice.Require();
        var before = EmulatedDevice.DeviceMemory();
        int failures = 0;
        for (int skip = 0; ; skip++)
        {
            ToMeEngine? engine = null;
            using (EmulatedDevice.FailAllocations(skip))
            {
                try
                {
                    engine = ToMeEngine.Create(weights, Cuda);
                }
                catch (CudaOutOfMemoryException e)
                {
                    failures++;
                    Assert.Contains("loading tiny_fault (its weights are", e.Message);
                    Assert.Contains("injected failure", e.Message);
                    Assert.Equal(before, EmulatedDevice.DeviceMemory());
                    if (skip == 0)
                        output.WriteLine(e.Message);
                    continue;
                }
            }
            using (engine)
                Assert.Equal(expected, engine.Logits(Images(2), 2));
            break;
        }
        Assert.True(failures >= 2 * 8 + 4, $"only {failures} allocations failed while loading");
        Assert.Equal(before, EmulatedDevice.DeviceMemory());
    }

    /// <summary>
    /// Every allocation of an engine's first forward (the workspace, the ops' scratch memory, cuBLAS's own workspace) fails
    /// in turn: the forward fails naming it and the batch, the same engine then gives the same logits as an engine that
    /// never failed, and disposing it leaves nothing allocated.
    /// </summary>
    [Fact]
    public void AllocationsDuringAForwardFailInTurnAndTheEngineRecovers()
    {
        var weights = TinyModel();
        var expected = Reference(weights, 2);
        using var holder = Gpu.Context();
        EmulatedDevice.Require();
        var before = EmulatedDevice.DeviceMemory();
        var seen = new HashSet<string>();
        for (int skip = 0; ; skip++)
        {
            Assert.True(skip < 200, "a forward still failed after 200 injected allocation failures");
            using var engine = ToMeEngine.Create(weights, Cuda);
            float[]? logits = null;
            using (EmulatedDevice.FailAllocations(skip))
            {
                try
                {
                    logits = engine.Logits(Images(2), 2);
                }
                catch (CudaOutOfMemoryException e)
                {
                    Assert.Contains(e.What.Contains("cuBLAS's workspace", StringComparison.Ordinal)
                        ? "in a forward pass of tiny_fault at batch 2 (one allocation per engine: a smaller batch needs it too)"
                        : "in a forward pass of tiny_fault at batch 2 (smaller batches still run)", e.Message);
                    var what = e.What.Contains("workspace (after", StringComparison.Ordinal) ? "workspace"
                        : e.What.Contains("scratch memory", StringComparison.Ordinal) ? "scratch"
                        : e.What.Contains("cuBLAS's workspace", StringComparison.Ordinal) ? "cublas"
                        : e.What.Contains("staging memory", StringComparison.Ordinal) ? "staging"
                        : throw new Xunit.Sdk.XunitException($"the error does not say what failed: {e.Message}");
                    if (seen.Add(what))
                        output.WriteLine(e.Message);
                }
            }
            bool failed = logits is null;
            logits ??= engine.Logits(Images(2), 2);
            Assert.Equal(expected, logits);
            engine.Dispose();
            Assert.Equal(before, EmulatedDevice.DeviceMemory());
            if (!failed)
                break; // the first forward makes fewer than skip + 1 allocations: each has failed once
        }
        Assert.Equal(["cublas", "scratch", "staging", "workspace"], seen.Order());
    }

    /// <summary>
    /// A batch far larger than the device's free memory fails naming the batch and the memory; the same engine then runs
    /// a normal batch with unchanged results. On the emulated device the workspace's allocations fail from the fourth
    /// on; on a GPU, memory held by the test leaves 64 MiB free.
    /// </summary>
    [Fact]
    public void AnAbsurdBatchRunsOutOfMemoryThenANormalBatchWorks()
    {
        const int absurd = 4096;
        var weights = TinyModel();
        var expected = Reference(weights, 2);
        using var engine = ToMeEngine.Create(weights, Cuda with { MaxBatchSize = absurd });
        Assert.Equal(expected, engine.Logits(Images(2), 2));
        var huge = Images(absurd);
        using var context = Gpu.Context();
        CudaOutOfMemoryException error;
        if (CudaDriver.IsEmulated)
        {
            using (EmulatedDevice.FailAllocations(skip: 3, count: -1))
                error = Assert.Throws<CudaOutOfMemoryException>(() => engine.Logits(huge, absurd));
        }
        else
        {
            var (free, _) = context.MemoryInfo();
            using var ballast = DeviceBuffer<byte>.Allocate(context, Math.Max(0, free - (64L << 20)));
            error = Assert.Throws<CudaOutOfMemoryException>(() => engine.Logits(huge, absurd));
            output.WriteLine(error.Message);
            Assert.Equal(expected, engine.Logits(Images(2), 2));
        }
        output.WriteLine(error.Message);
        Assert.StartsWith("out of GPU memory: ", error.Message);
        Assert.Contains($"the forward pass's workspace (after ", error.Message);
        Assert.Contains($"in a forward pass of tiny_fault at batch {absurd}", error.Message);
        Assert.Matches(@"the device has [0-9.]+ (GiB|MiB|bytes) free of [0-9.]+ GiB", error.Message);
        Assert.Equal(CudaApi.Driver, error.Api);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", error.StatusName);
        Assert.Equal(expected, engine.Logits(Images(2), 2));
        Assert.Equal(expected, engine.Logits(Images(2), 2));
    }

    /// <summary>
    /// The workspace's out-of-memory message counts what it got in the elements' real sizes: half-precision activations at
    /// 2 bytes, the float32 and int32 buffers at 4. Its seventh allocation (the metric, after the images, the residual
    /// stream and its twin in float32, then Hidden, Qkv and Mlp in fp16) fails.
    /// </summary>
    [Fact]
    public void TheWorkspaceCountsHalfActivationsAtTheirSize()
    {
        using var gpu = BackendPair.CreateGpu();
        EmulatedDevice.Require();
        var config = TinyModel().Config;
        const long batch = 3;
        long t0 = config.Tokens, c = config.EmbedDim, s = config.ImageSize;
        long expected = batch * (4 * (3 * s * s + 2 * t0 * c) + 2 * (t0 * c + 3 * t0 * c + t0 * config.MlpHidden));
        CudaOutOfMemoryException error;
        using (EmulatedDevice.FailAllocations(skip: 6))
            error = Assert.Throws<CudaOutOfMemoryException>(() => new ForwardPass.Workspace(gpu, config, (int)batch, Precision.Float16));
        output.WriteLine(error.Message);
        Assert.Contains($"the forward pass's workspace (after {CudaFaults.Bytes(expected)} of it)", error.Message);
    }

    /// <summary>
    /// An illegal address in a kernel loses the context, as on a GPU: the engine says so, naming the error, releases the
    /// device, and keeps saying so; a new engine then runs with unchanged results.
    /// </summary>
    [Fact]
    public void AnIllegalAddressLosesTheContextAndANewEngineWorks()
    {
        var weights = TinyModel();
        var expected = Reference(weights, 2);
        GpuRequirement.RequireDevice();
        EmulatedDevice.Require();
        var before = EmulatedDevice.DeviceMemory();
        using (EmulatedDevice.StickyErrors())
        {
            // Another user of the device's primary context, as a second engine would be.
            var other = Gpu.Context();
            var engine = ToMeEngine.Create(weights, Cuda);
            CudaContextLostException lost;
            using (EmulatedDevice.FaultLaunch("layer_norm_f32", skip: 1))
                lost = Assert.Throws<CudaContextLostException>(() => engine.Logits(Images(2), 2));
            output.WriteLine(lost.Message);
            Assert.Contains("the GPU context was lost while running tiny_fault: CUDA_ERROR_ILLEGAL_ADDRESS", lost.Message);
            Assert.Contains("kernel layer_norm_f32", lost.Message);
            Assert.Contains("create a new engine", lost.Message);
            var again = Assert.Throws<CudaContextLostException>(() => engine.Logits(Images(2), 2));
            Assert.Contains("CUDA_ERROR_ILLEGAL_ADDRESS", again.Message);
            engine.Dispose();
            // The context stays lost for every user until the last one lets it go.
            Assert.Equal("CUDA_ERROR_ILLEGAL_ADDRESS", Assert.Throws<CudaException>(other.Synchronize).StatusName);
            other.Dispose();
            Assert.Equal(before, EmulatedDevice.DeviceMemory());

            using var fresh = ToMeEngine.Create(weights, Cuda);
            Assert.Equal(expected, fresh.Logits(Images(2), 2));
        }
    }
    /// <summary>
    /// A pool member whose engine loses its GPU context fails that batch, then serves again on a fresh engine. While the
    /// context stays lost (another user holds it), building one fails: the member says why (Fault) and its requests fail
    /// with that; once the context is let go, the next batch builds the engine and the answers are unchanged. Without a way
    /// to build one, the member keeps the lost engine and says so.
    /// </summary>
    [Fact]
    public async Task APoolReplacesAnEngineWhoseContextWasLost()
    {
        GpuRequirement.RequireDevice();
        EmulatedDevice.Require();
        var token = TestContext.Current.CancellationToken;
        var path = Fixtures.ModelPath("deit_t4_distilled");
        var options = new EngineOptions { Backend = BackendKind.Cuda, MaxBatchSize = 2, Schedule = MergeSchedule.Constant(2) };
        var weights = Fixtures.Model("deit_t4_distilled");
        var image = Gpu.Random(3 * weights.Config.ImageSize * weights.Config.ImageSize, seed: 5);
        IReadOnlyList<Prediction> expected;
        using (var reference = ToMeEngine.Create(weights, options))
            expected = reference.TopK(reference.Logits(image, 1), 3);
        var before = EmulatedDevice.DeviceMemory();
        using (EmulatedDevice.StickyErrors())
        {
            using (var pool = EnginePool.Load(path, options, pool: new EnginePoolOptions { CudaDevices = [0] }))
            {
                var member = Assert.Single(pool.Members);
                Assert.Equal(expected, await pool.ClassifyAsync(ImageInput.FromTensor(image), 3, token));
                var first = member.Engine;

                var holder = Gpu.Context();
                using (EmulatedDevice.FaultLaunch("layer_norm_f32", skip: 1))
                    Assert.Throws<CudaContextLostException>(() => first.Logits(image, 1));
                await Assert.ThrowsAsync<CudaContextLostException>(() => pool.ClassifyAsync(ImageInput.FromTensor(image), 3, token));
                Assert.NotNull(member.Fault);
                output.WriteLine(member.Fault.Message);
                Assert.Contains("the GPU context was lost", member.Fault.Message);
                Assert.Contains("a fresh engine could not be built", member.Fault.Message);
                Assert.Same(member.Fault, pool.Fault); // its only member: the pool cannot classify either (health checks say so)
                var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => pool.ClassifyAsync(ImageInput.FromTensor(image), 3, token));
                Assert.Contains("a fresh engine could not be built", refused.Message);

                holder.Dispose();
                Assert.Equal(expected, await pool.ClassifyAsync(ImageInput.FromTensor(image), 3, token));
                Assert.Null(member.Fault);
                Assert.Null(pool.Fault);
                Assert.NotSame(first, member.Engine);
                Assert.Equal(expected, await pool.ClassifyAsync(ImageInput.FromTensor(image), 3, token));
            }
            // A classifier given no way to build an engine keeps the lost one, and says so.
            using (var lone = new BatchingClassifier(ToMeEngine.Create(weights, options)))
            {
                using (EmulatedDevice.FaultLaunch("layer_norm_f32", skip: 1))
                    Assert.Throws<CudaContextLostException>(() => lone.Engine.Logits(image, 1));
                await Assert.ThrowsAsync<CudaContextLostException>(() => lone.ClassifyAsync(ImageInput.FromTensor(image), 3, token));
                Assert.NotNull(lone.Fault);
                Assert.Contains("no way to build a fresh engine", lone.Fault.Message);
                await Assert.ThrowsAsync<CudaContextLostException>(() => lone.ClassifyAsync(ImageInput.FromTensor(image), 3, token));
            }
            Assert.Equal(before, EmulatedDevice.DeviceMemory());
        }
    }
}
