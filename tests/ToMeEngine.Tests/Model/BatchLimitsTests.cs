using System.Globalization;
using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Model;

namespace ToMe.Tests.Model;

/// <summary>
/// Batch sizes whose buffers pass 2³¹ elements: sized in 64 bits, refused up front where the backend cannot hold them,
/// never wrapped. Nothing here allocates more than a few tens of MB.
/// </summary>
public class BatchLimitsTests
{
    // .NET arrays (the CPU backend's buffers) hold at most Array.MaxLength = 2,147,483,591 elements.
    [Theory]
    [InlineData("vit_base_patch16_512", 682)]   // ⌊Array.MaxLength / (1025 tokens · 3072 hidden)⌋: batch 683 went negative in int
    [InlineData("vit_large_patch16_512", 511)]  // ⌊… / (1025 · 4096)⌋: batch 1024 wrapped to 4,194,304 elements
    [InlineData("vit_huge_patch14_518", 306)]   // ⌊… / (1370 · 5120)⌋
    [InlineData("vit_base_patch8_224", 890)]    // ⌊… / (785 · 3072)⌋
    public void TheCpuBackendRefusesTheFirstBatchItsArraysCannotHold(string architecture, int largest)
    {
        var config = ModelConfigReader.FromArchitectureName(architecture);
        using var cpu = new CpuBackend(1);
        Assert.Equal(largest, BatchLimits.LargestBatch(config, cpu.MaxBufferElements));
        BatchLimits.Check(cpu, config, largest);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => BatchLimits.Check(cpu, config, largest + 1));
        Assert.Equal("batch", error.ParamName);
        Assert.Contains("MLP activations", error.Message);
        Assert.Contains($"the largest batch that fits is {largest}", error.Message);
        long elements = (largest + 1) * (long)config.Tokens * config.MlpHidden;
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"would hold {elements:N0} elements at batch {largest + 1}"), error.Message);
    }

    [Fact]
    public void WithBuffersAddressedIn64BitsOnlyTheResultArraysBoundTheBatch()
    {
        var config = ModelConfigReader.FromArchitectureName("vit_base_patch16_512");
        Assert.Equal(2_095_105, BatchLimits.LargestBatch(config, long.MaxValue));   // the [B, T] sizes and groups: ⌊Array.MaxLength / 1025⌋
        Assert.Equal(2_728, BatchLimits.LargestBatch(config, long.MaxValue, returnTokens: true));   // tokens [B, T, C]: ⌊… / (1025 · 768)⌋
        // A 141 GiB device bounds one buffer at 141·2³⁰ / 4 floats: ⌊37,849,399,296 / (1025 · 3072)⌋.
        Assert.Equal(12_020, BatchLimits.LargestBatch(config, (141L << 30) / sizeof(float)));
    }

    [Fact]
    public void TheWorkspaceAsksForItsBuffersIn64Bits()
    {
        var large = ModelConfigReader.FromArchitectureName("vit_large_patch16_512");
        var sizes = WorkspaceSizes(large, 1024);
        Assert.All(sizes, n => Assert.True(n > 0));
        Assert.Equal(1024L * 1025 * 4096, sizes.Max());   // 4,299,161,600 MLP activations, not 4,194,304
        Assert.Contains(1024L * 1025 * 3 * 1024, sizes);

        var b = ModelConfigReader.FromArchitectureName("vit_base_patch16_512");
        Assert.Equal(683L * 1025 * 3072, WorkspaceSizes(b, 683).Max());
    }

    [Theory]
    [InlineData("vit_tiny_patch16_224")]
    [InlineData("deit_base_distilled_patch16_384")]
    [InlineData("vit_base_patch16_512")]
    [InlineData("vit_large_patch14_reg4_dinov2")]
    public void AtTheLargestBatchEveryWorkspaceBufferFitsTheBackend(string architecture)
    {
        var config = ModelConfigReader.FromArchitectureName(architecture);
        int largest = BatchLimits.LargestBatch(config, Array.MaxLength);
        Assert.All(WorkspaceSizes(config, largest), n => Assert.InRange(n, 1, Array.MaxLength));
    }

    [Fact]
    public void AModelWhoseAttentionMatrixCannotBeHeldFitsNoBatch()
    {
        var config = ModelConfigReader.FromArchitectureName("vit_tiny_patch4_1024");   // 65,537 tokens: T² wrapped to 131,073 in int
        using var cpu = new CpuBackend(1);
        Assert.Equal(0, BatchLimits.LargestBatch(config, cpu.MaxBufferElements));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => BatchLimits.Check(cpu, config, 1));
        Assert.Contains("attention matrix [T, T]", error.Message);
        Assert.Contains("no batch fits the cpu backend", error.Message);
    }

    /// <summary>A one-block model with the widest MLP a config may have: batch 8 passes 2³¹ MLP elements on 8 MB of weights.</summary>
    private static ModelWeights WideMlpModel() => ModelWeights.Random(ModelConfigReader.FromArchitectureName("vit_tiny_patch16_512") with
    {
        Architecture = "wide_mlp",
        EmbedDim = 8,
        NumHeads = 1,
        Depth = 1,
        MlpHidden = ConfigLimits.MaxMlpHidden,
        NumClasses = 10,
    }, seed: 1);

    [Fact]
    public void TheForwardPassRefusesTheBatchBeforeAllocating()
    {
        var weights = WideMlpModel();
        using var cpu = new CpuBackend(1);
        using var pass = new ForwardPass(cpu, weights);
        var images = new float[8 * 3 * 512 * 512];
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => pass.Run(images, 8, new ForwardOptions()));
        Assert.Contains("wide_mlp: the MLP activations [B, T, hidden] would hold 2,149,580,800 elements at batch 8", error.Message);
        Assert.Contains("the largest batch that fits is 7", error.Message);
    }

    [Fact]
    public void LoadingRefusesAMaxBatchSizeTheBackendCannotRun()
    {
        var weights = WideMlpModel();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ToMeEngine.Create(weights, new EngineOptions { Backend = BackendKind.Cpu, Threads = 1, MaxBatchSize = 8 }));
        Assert.Equal(nameof(EngineOptions.MaxBatchSize), error.ParamName);
        Assert.Contains("the largest batch that fits is 7", error.Message);
        using var engine = ToMeEngine.Create(weights, new EngineOptions { Backend = BackendKind.Cpu, Threads = 1, MaxBatchSize = 7 });
    }

    [Fact]
    public void TheCpuBackendRefusesABufferPastAnArray()
    {
        using var cpu = new CpuBackend(1);
        Assert.Throws<ArgumentOutOfRangeException>(() => cpu.AllocateFloat((long)Array.MaxLength + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => cpu.AllocateInt(1L << 32));
    }

    private static List<long> WorkspaceSizes(ModelConfig config, int batch)
    {
        var recorder = new SizeRecorder();
        using var workspace = new ForwardPass.Workspace(recorder, config, batch);
        return recorder.Sizes;
    }

    /// <summary>A backend that only records the sizes it is asked to allocate.</summary>
    private sealed class SizeRecorder : IBackend
    {
        public List<long> Sizes { get; } = [];
        public string Name => "recorder";
        public string DeviceName => "none";
        public long MaxBufferElements => long.MaxValue;
        public DeviceBuffer AllocateFloat(long length) => Record(length);
        public DeviceBuffer AllocateInt(long length) => Record(length);

        private SizeOnly Record(long length)
        {
            Sizes.Add(length);
            return new SizeOnly(length);
        }

        private sealed class SizeOnly(long length) : DeviceBuffer
        {
            public override long Length => length;
        }

        private static NotSupportedException Unused() => new("the recorder runs no ops");
        public void Upload(ReadOnlySpan<float> source, DeviceBuffer destination) => throw Unused();
        public void Upload(ReadOnlySpan<int> source, DeviceBuffer destination) => throw Unused();
        public void Download(DeviceBuffer source, Span<float> destination) => throw Unused();
        public void Download(DeviceBuffer source, Span<int> destination) => throw Unused();
        public Precision ResolvePrecision(Precision requested) => throw Unused();
        public ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias, Precision precision) => throw Unused();
        public void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch, int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x) => throw Unused();
        public void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y) => throw Unused();
        public void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y) => throw Unused();
        public void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y) => throw Unused();
        public void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim, DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention) => throw Unused();
        public void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, DeviceBuffer best, DeviceBuffer bestIndex) => throw Unused();
        public void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order) => throw Unused();
        public void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex, DeviceBuffer? weight, int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens, DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut) => throw Unused();
        public void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score) => throw Unused();
        public void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs, DeviceBuffer dest) => throw Unused();
        public void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth, float threshold, DeviceBuffer dest, DeviceBuffer counts) => throw Unused();
        public void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest, int batch, int tokens, int channels, int originalTokens, int newTokens, DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut) => throw Unused();
        public void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled) => throw Unused();
        public void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled) => throw Unused();
        public void Dispose() { }
    }
}
