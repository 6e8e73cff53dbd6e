using System.Diagnostics;
using System.Globalization;

namespace ToMe.Backends.Checks;

/// <summary>The outcome of one op check: whether the backend under test matched the CPU reference, and by how much it missed.</summary>
/// <param name="Op">The op (an <see cref="IBackend"/> method).</param>
/// <param name="Case">The shape and inputs, e.g. "B=3 T=197 H=3 D=64 sizes=random".</param>
/// <param name="Passed">Every comparison within its tolerance, no sentinel overwritten, no error thrown.</param>
/// <param name="MaxAbsError">Largest absolute difference over the float outputs (0 for integer outputs).</param>
/// <param name="MaxRelError">Largest relative difference over the float outputs.</param>
/// <param name="Tolerance">The loosest tolerance the outputs were held to ("exact": bitwise).</param>
/// <param name="Milliseconds">Wall time of the check, both backends and the comparisons.</param>
/// <param name="Failure">What failed, first mismatches included; null when passed.</param>
internal sealed record OpCheckResult(string Op, string Case, bool Passed, double MaxAbsError, double MaxRelError, string Tolerance,
                                   double Milliseconds, string? Failure)
{
    public string Name => $"{Op} {Case}";
}

/// <summary>One op at one awkward shape, on fresh seeded inputs, against the CPU twin, in a precision the device may lack.</summary>
internal sealed record OpCheck(string Op, string Case, Action<OpCheckPair> Body, Precision Precision = Precision.Float32)
{
    public string Name => $"{Op} {Case}";
}

/// <summary>
/// Every op of <see cref="IBackend"/> against the CPU backend at awkward shapes (N = 1, 2, 197, 577, 1025; odd batches;
/// ties; zero norms and sizes; sentinels after every output). The one set of checks: the test suite runs each one on the
/// emulated device or a GPU, and <c>tome kernels test</c> runs them on the user's device.
/// </summary>
internal static partial class OpChecks
{
    public static IReadOnlyList<OpCheck> All { get; } = [.. DenseChecks(), .. HalfChecks(), .. MergingChecks(), .. VariantChecks()];

    /// <summary>The checks <paramref name="device"/> can run: every fp32 one, and those of the precisions it runs (bf16 needs sm_80+).</summary>
    public static IReadOnlyList<OpCheck> For(IBackend device)
    {
        var runs = All.Select(c => c.Precision).Distinct().Where(p => Runs(device, p)).ToHashSet();
        return [.. All.Where(c => runs.Contains(c.Precision))];
    }

    private static bool Runs(IBackend device, Precision precision)
    {
        try
        {
            return device.ResolvePrecision(precision) == precision;
        }
        catch (NotSupportedException)
        {
            return false;
        }
    }

    /// <exception cref="ArgumentException">No check has that name.</exception>
    public static OpCheck Find(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no op check named '{name}'", nameof(name));

    /// <summary>Runs one check on <paramref name="device"/>; what it throws is a failure of the check, not of the run.</summary>
    public static OpCheckResult Run(OpCheck check, IBackend device)
    {
        using var pair = new OpCheckPair(device);
        long start = Stopwatch.GetTimestamp();
        try
        {
            check.Body(pair);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            pair.Fail($"{e.GetType().Name}: {e.Message}");
        }
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        return new OpCheckResult(check.Op, check.Case, pair.Failures.Count == 0, pair.MaxAbsError, pair.MaxRelError, pair.Tolerance, ms,
            pair.Failures.Count == 0 ? null : string.Join("\n", pair.Failures));
    }

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static OpCheck Check(string op, FormattableString @case, Action<OpCheckPair> body) => new(op, F(@case), body);

    /// <summary>Size patterns for attention: none, random 1..4, with zeros (the whole first key tile too), all zero.</summary>
    public enum SizeMode { None, Random, WithZeros, AllZero }

    /// <summary>Sizes of <paramref name="rows"/> tokens (images of <paramref name="tokens"/>) in a pattern (None gives all zeros: pass no sizes then).</summary>
    public static float[] AttentionSizes(SizeMode mode, int rows, int tokens)
    {
        var random = new Random(16);
        return Enumerable.Range(0, rows).Select(i => mode switch
        {
            SizeMode.Random => random.Next(1, 5),
            SizeMode.WithZeros => i % tokens < 40 || i % 7 == 3 ? 0f : random.Next(1, 5),
            _ => 0f,
        }).ToArray();
    }

    private static IEnumerable<OpCheck> DenseChecks()
    {
        foreach (var (b, s, p, prefix) in new[] { (1, 32, 8, 1), (3, 30, 8, 2), (3, 48, 16, 0) }) // 30: the remainder is ignored, as the conv does
            yield return Check("patch_embed", $"B={b} S={s} P={p} prefix={prefix}", pair => PatchEmbed(pair, b, s, p, prefix));
        foreach (var (rows, k, n, e) in new[] { (1, 37, 19, 0), (197, 64, 96, 1), (594, 192, 576, 0), (198, 96, 40, 2), (3, 768, 1000, 0), (2, 384, 1536, 1) })
            yield return Check("linear", $"{rows}x{k}->{n} {(LinearEpilogue)e}", pair => Linear(pair, rows, k, n, (LinearEpilogue)e));
        foreach (var (rows, c, inPlace, offset) in new[] { (1, 768, false, 0f), (591, 192, true, 0f), (5, 37, false, 0f), (197, 768, true, 1e4f), (9, 37, true, 1e4f), (3, 3072, false, -1e4f), (2, 1, false, 1e4f) })
            yield return Check("layer_norm", $"{rows}x{c}{(offset != 0 ? $" offset {offset:0e0}" : "")}{(inPlace ? " in place" : "")}", pair => LayerNorm(pair, rows, c, inPlace, offset));
        yield return Check("gather_prefix", $"B=3 T=197 C=192 count=2", GatherPrefix);
        foreach (var (b, t, c, skip, zero) in new[] { (3, 197, 192, 1, false), (1, 1, 8, 0, false), (2, 50, 33, 0, true) })
            yield return Check("weighted_mean_pool", $"B={b} T={t} C={c} skip={skip}{(zero ? " sizes=0" : "")}", pair => WeightedMeanPool(pair, b, t, c, skip, zero));
        foreach (var (b, t, h, d, mode, cls) in new[]
        {
            (1, 1, 3, 64, SizeMode.Random, true), (1, 2, 2, 64, SizeMode.None, true), (3, 197, 3, 64, SizeMode.Random, true),
            (1, 198, 2, 64, SizeMode.WithZeros, true), (1, 577, 2, 64, SizeMode.Random, false), (3, 1025, 2, 64, SizeMode.WithZeros, true),
            (1, 197, 2, 32, SizeMode.Random, true), (1, 197, 2, 80, SizeMode.Random, true), (1, 65, 2, 96, SizeMode.WithZeros, false),
            (2, 197, 2, 128, SizeMode.Random, true), (1, 50, 2, 64, SizeMode.AllZero, true),
        })
            yield return Check("attention", $"B={b} T={t} H={h} D={d} sizes={mode.ToString().ToLowerInvariant()}{(cls ? " +class row" : "")}",
                pair => Attention(pair, b, t, h, d, mode, cls));
    }

    private static void PatchEmbed(OpCheckPair pair, int batch, int imageSize, int patchSize, int prefixTokens)
    {
        const int channels = 24;
        int grid = imageSize / patchSize, k = 3 * patchSize * patchSize, tokens = prefixTokens + grid * grid;
        var linear = pair.Linear(OpCheckPair.Random(channels * k, seed: 1), channels, k, OpCheckPair.Random(channels, seed: 2));
        var images = pair.Floats(OpCheckPair.Random(batch * 3 * imageSize * imageSize, seed: 3));
        var prefix = prefixTokens > 0 ? pair.Floats(OpCheckPair.Random(prefixTokens * channels, seed: 4)) : default;
        var pos = pair.Floats(OpCheckPair.Random(tokens * channels, seed: 5));
        var x = pair.FloatOutput(batch * tokens * channels);

        pair.Cpu.PatchEmbed(images.Cpu, prefix.Cpu, pos.Cpu, linear.Cpu, batch, imageSize, patchSize, prefixTokens, x.Cpu);
        pair.Device.PatchEmbed(images.Device, prefix.Device, pos.Device, linear.Device, batch, imageSize, patchSize, prefixTokens, x.Device);

        int n = batch * tokens * channels;
        pair.Close(pair.ReadCpu(x.Cpu, n), pair.ReadDevice(x.Device, n, "x"), 1e-5f, 1e-5f, "x");
    }

    private static void Linear(OpCheckPair pair, int rows, int inFeatures, int outFeatures, LinearEpilogue epilogue)
    {
        var linear = pair.Linear(OpCheckPair.Random(outFeatures * inFeatures, seed: 6, scale: 0.2f), outFeatures, inFeatures, OpCheckPair.Random(outFeatures, seed: 7));
        var x = pair.Floats(OpCheckPair.Random(rows * inFeatures, seed: 8, scale: 2f));
        var y = pair.Floats(OpCheckPair.Random(rows * outFeatures, seed: 9)); // the residual for BiasAccumulate

        pair.Cpu.Linear(x.Cpu, linear.Cpu, rows, epilogue, y.Cpu);
        pair.Device.Linear(x.Device, linear.Device, rows, epilogue, y.Device);

        int n = rows * outFeatures;
        pair.Close(pair.ReadCpu(y.Cpu, n), pair.ReadDevice(y.Device, n, "y"), 2e-5f, 1e-5f, "y");
    }

    /// <summary>In place (as the forward runs it) and not; rows on a common offset of 1e4 need the second centring pass.</summary>
    private static void LayerNorm(OpCheckPair pair, int rows, int channels, bool inPlace, float offset)
    {
        var x = pair.Floats(OpCheckPair.Random(rows * channels, seed: 10 + rows, scale: 3f).Select(v => v + offset).ToArray());
        var weight = pair.Floats(OpCheckPair.Random(channels, seed: 11));
        var bias = pair.Floats(OpCheckPair.Random(channels, seed: 12));
        var y = inPlace ? x : pair.FloatOutput(rows * channels);

        pair.Cpu.LayerNorm(x.Cpu, weight.Cpu, bias.Cpu, rows, channels, 1e-6f, y.Cpu);
        pair.Device.LayerNorm(x.Device, weight.Device, bias.Device, rows, channels, 1e-6f, y.Device);

        int n = rows * channels;
        pair.Close(pair.ReadCpu(y.Cpu, n), pair.ReadDevice(y.Device, n, "y"), 1e-5f, 1e-5f, "y");
    }

    private static void GatherPrefix(OpCheckPair pair)
    {
        const int batch = 3, tokens = 197, channels = 192, count = 2;
        var x = pair.Floats(OpCheckPair.Random(batch * tokens * channels, seed: 13));
        var pooled = pair.FloatOutput(batch * count * channels);

        pair.Cpu.GatherPrefix(x.Cpu, batch, tokens, channels, count, pooled.Cpu);
        pair.Device.GatherPrefix(x.Device, batch, tokens, channels, count, pooled.Device);

        int n = batch * count * channels;
        pair.Identical(pair.ReadCpu(pooled.Cpu, n), pair.ReadDevice(pooled.Device, n, "pooled"), "pooled");
    }

    private static void WeightedMeanPool(OpCheckPair pair, int batch, int tokens, int channels, int skip, bool zeroSizes)
    {
        var x = pair.Floats(OpCheckPair.Random(batch * tokens * channels, seed: 14));
        var random = new Random(15);
        var size = pair.Floats(Enumerable.Range(0, batch * tokens).Select(_ => zeroSizes ? 0f : random.Next(1, 6)).ToArray());
        var pooled = pair.FloatOutput(batch * channels);

        pair.Cpu.WeightedMeanPool(x.Cpu, size.Cpu, batch, tokens, channels, skip, pooled.Cpu);
        pair.Device.WeightedMeanPool(x.Device, size.Device, batch, tokens, channels, skip, pooled.Device);

        int n = batch * channels;
        // Both accumulate exact products in double in token order; every size 0 gives zeros, not NaN.
        pair.Close(pair.ReadCpu(pooled.Cpu, n), pair.ReadDevice(pooled.Device, n, "pooled"), 0f, 1e-6f, "pooled");
    }

    private static void Attention(OpCheckPair pair, int batch, int tokens, int heads, int headDim, SizeMode sizeMode, bool classAttention)
    {
        int c = heads * headDim, rows = batch * tokens;
        var qkv = pair.Floats(OpCheckPair.Random(rows * 3 * c, seed: tokens + headDim, scale: 1.5f));
        var size = sizeMode == SizeMode.None ? default : pair.Floats(AttentionSizes(sizeMode, rows, tokens));
        var output = pair.FloatOutput(rows * c);
        var keyMean = pair.FloatOutput(rows * headDim);
        var cls = classAttention ? pair.FloatOutput(rows) : default;

        pair.Cpu.Attention(qkv.Cpu, size.Cpu, batch, tokens, heads, headDim, output.Cpu, keyMean.Cpu, cls.Cpu);
        pair.Device.Attention(qkv.Device, size.Device, batch, tokens, heads, headDim, output.Device, keyMean.Device, cls.Device);

        pair.Close(pair.ReadCpu(output.Cpu, rows * c), pair.ReadDevice(output.Device, rows * c, "output"), 1e-4f, 1e-4f, "output");
        // Heads summed in the same order and divided: bit-identical.
        pair.Identical(pair.ReadCpu(keyMean.Cpu, rows * headDim), pair.ReadDevice(keyMean.Device, rows * headDim, "key mean"), "key mean");
        if (classAttention)
            pair.Close(pair.ReadCpu(cls.Cpu, rows), pair.ReadDevice(cls.Device, rows, "class attention"), 1e-6f, 1e-4f, "class attention");
    }

    /// <summary>Cosine similarity of two metric rows in double (0 for a zero norm).</summary>
    private static double Cosine(float[] metric, int dim, int tokenA, int tokenB)
    {
        double dot = 0, na = 0, nb = 0;
        for (int d = 0; d < dim; d++)
        {
            double a = metric[tokenA * dim + d], b = metric[tokenB * dim + d];
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }
}
