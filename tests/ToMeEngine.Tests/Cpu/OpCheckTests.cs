using ToMe.Backends;
using ToMe.Backends.Checks;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The op checks that the CUDA tests and <c>tome kernels test</c> run, checked themselves without a device: every check
/// passes for a correct backend (a second CPU backend), and every check of an op fails when that op's output is wrong in
/// one element or has one element written past its end.
/// </summary>
public class OpCheckTests
{
    [Fact]
    public void EveryCheckPassesOnACorrectBackendAndNamesAreUnique()
    {
        using var device = new CpuBackend(maxThreads: 2);
        Assert.Equal(OpChecks.All.Count, OpChecks.All.Select(c => c.Name).Distinct().Count());
        var failed = OpChecks.For(device).Select(c => OpChecks.Run(c, device)).Where(r => !r.Passed).Select(r => $"{r.Name}: {r.Failure}").ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed));
    }

    public static TheoryData<string, bool> Faults() =>
        new(from op in OpChecks.All.Where(c => c.Precision == Precision.Float32).Select(c => c.Op).Distinct() from pastEnd in new[] { false, true } select (op, pastEnd));

    [Theory]
    [MemberData(nameof(Faults))]
    public void EveryCheckOfAnOpCatchesAWrongElementAndAWriteOutOfBounds(string op, bool pastEnd)
    {
        using var device = new CorruptingBackend(new CpuBackend(maxThreads: 2), op, pastEnd);
        // The CPU runs fp32 only: the half checks' faults are the device tests' (PlantedBugTests).
        foreach (var check in OpChecks.For(device).Where(c => c.Op == op))
        {
            var result = OpChecks.Run(check, device);
            Assert.False(result.Passed, $"{check.Name}: a {(pastEnd ? "write past the end" : "wrong element")} went unnoticed");
        }
    }

    [Fact]
    public void ResultsReportTheLargestErrorAndTheTolerance()
    {
        using var pair = new OpCheckPair(new CpuBackend(maxThreads: 1), ownsDevice: true);
        pair.Close([1f, 2f, -4f], [1f, 2.0001f, -4f], 1e-3f, 0f, "x");
        pair.Close([10f], [10f], 1e-5f, 1e-5f, "y");
        Assert.Empty(pair.Failures);
        Assert.Equal(1e-4, pair.MaxAbsError, 1e-6);
        Assert.Equal(5e-5, pair.MaxRelError, 1e-6);
        Assert.Equal("atol 0.001, rtol 0", pair.Tolerance);
        pair.Close([1f], [float.NaN], 1f, 1f, "z");
        pair.Identical([1, 2], [1, 3], "ints");
        Assert.Equal(2, pair.Failures.Count);
    }

    /// <summary>The CPU backend with one op's output damaged after it runs: one element changed, or one written past the end.</summary>
    private sealed class CorruptingBackend(CpuBackend inner, string op, bool pastEnd) : ForwardingBackend(inner)
    {
        public override string Name => "corrupted " + op;

        private void Damage(string name, DeviceBuffer output, long length, bool ints = false)
        {
            if (name != op)
                return;
            long index = pastEnd ? length : length / 2;
            if (ints)
            {
                var values = new int[output.Length];
                Inner.Download(output, values);
                values[index] += 1;
                Inner.Upload(values, output);
            }
            else
            {
                var values = new float[output.Length];
                Inner.Download(output, values);
                float v = values[index];
                values[index] = v == 0 || !float.IsFinite(v) ? 1f : v * 1.5f + 1f;
                Inner.Upload(values, output);
            }
        }

        public override void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch, int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
        {
            Inner.PatchEmbed(images, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
            int grid = imageSize / patchSize;
            Damage("patch_embed", x, (long)batch * (prefixTokens + grid * grid) * patch.OutFeatures);
        }

        public override void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y)
        {
            Inner.LayerNorm(x, weight, bias, rows, channels, eps, y);
            Damage("layer_norm", y, (long)rows * channels);
        }

        public override void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y)
        {
            Inner.Linear(x, weights, rows, epilogue, y);
            Damage("linear", y, (long)rows * weights.OutFeatures);
        }

        public override void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim, DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
        {
            Inner.Attention(qkv, size, batch, tokens, heads, headDim, output, keyMean, classAttention);
            Damage("attention", output, (long)batch * tokens * heads * headDim);
        }

        public override void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, DeviceBuffer best, DeviceBuffer bestIndex)
        {
            Inner.BipartiteMatch(metric, batch, tokens, dim, prefixTokens, best, bestIndex);
            Damage("bipartite_match", best, (long)batch * ((tokens + 1) / 2));
        }

        public override void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order)
        {
            Inner.SelectTopR(best, batch, setA, r, keepUnmergedInOrder, order);
            Damage("select_top_r", order, (long)batch * setA, ints: true);
        }

        public override void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex, DeviceBuffer? weight, int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens, DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
        {
            Inner.Merge(x, size, groups, order, bestIndex, weight, batch, tokens, channels, originalTokens, r, prefixTokens, xOut, sizeOut, groupsOut);
            Damage("merge", xOut, (long)batch * (tokens - r) * channels);
        }

        public override void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score)
        {
            Inner.ClassImportance(qkv, classAttention, batch, tokens, heads, headDim, score);
            Damage("class_importance", score, (long)batch * tokens);
        }

        public override void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs, DeviceBuffer dest)
        {
            Inner.AssignToMostSimilar(metric, role, batch, tokens, dim, protectedOutputs, dest);
            Damage("assign_to_most_similar", dest, (long)batch * tokens, ints: true);
        }

        public override void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth, float threshold, DeviceBuffer dest, DeviceBuffer counts)
        {
            Inner.GridComponents(metric, batch, tokens, dim, prefixTokens, gridHeight, gridWidth, threshold, dest, counts);
            Damage("grid_components", dest, (long)batch * tokens, ints: true);
        }

        public override void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest, int batch, int tokens, int channels, int originalTokens, int newTokens, DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
        {
            Inner.MergeAssigned(x, size, groups, dest, batch, tokens, channels, originalTokens, newTokens, xOut, sizeOut, groupsOut);
            Damage("merge_assigned", xOut, (long)batch * newTokens * channels);
        }

        public override void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled)
        {
            Inner.GatherPrefix(x, batch, tokens, channels, count, pooled);
            Damage("gather_prefix", pooled, (long)batch * count * channels);
        }

        public override void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled)
        {
            Inner.WeightedMeanPool(x, size, batch, tokens, channels, skip, pooled);
            Damage("weighted_mean_pool", pooled, (long)batch * channels);
        }
    }
}
