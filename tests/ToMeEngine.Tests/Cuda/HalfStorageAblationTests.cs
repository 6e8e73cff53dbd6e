using System.Globalization;
using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The rounding model behind the bf16 storage ablation (<see cref="HalfStorageAblation"/>): an fp32 forward whose tensors
/// are rounded where a half pass stores them. The suite checks that the model is transparent when nothing is rounded and
/// that, with bf16 rounding at every storage point, it reproduces the real bf16 pass's error; the ablation table itself
/// (every variant over every fixture case) is a measurement, run on demand with TOME_HALF_ABLATION=1
/// (bench/results/half-precision-emulated-2026-12-02.md).
/// </summary>
public class HalfStorageAblationTests(ITestOutputHelper output)
{
    private static readonly HalfPoint[] AllPoints = Enum.GetValues<HalfPoint>();

    private static Dictionary<HalfPoint, FloatStorage> Everywhere(FloatStorage storage) => AllPoints.ToDictionary(p => p, _ => storage);

    private static readonly HalfPoint[] WeightPoints = [HalfPoint.QkvWeights, HalfPoint.ProjWeights, HalfPoint.Fc1Weights, HalfPoint.Fc2Weights];

    /// <summary>
    /// Cases without merging (no decision can flip, so the error is the rounding alone), one per patch size and class-token
    /// layout: vit_p14_d3 carries bf16's largest r = 0 error (2.10e-2), vit_t4 the most common one.
    /// </summary>
    private static readonly (string Model, string Case)[] UnmergedCases = [("vit_p14_d3", "case0"), ("vit_t4", "case0")];

    /// <summary>
    /// A case from each model, merging included (vit_t4 case6: every layer of a bf16 pass decides otherwise than fp32),
    /// for the transparency check.
    /// </summary>
    private static readonly (string Model, string Case)[] MixedCases =
        [("vit_t4", "case6"), ("deit_t4_distilled", "case4"), ("vit_p14_d3", "case2"), ("vit_avg_d3", "case3")];

    private static Dictionary<HalfPoint, FloatStorage> Except(FloatStorage? instead, params HalfPoint[] kept)
    {
        var points = Everywhere(FloatStorage.BF16);
        foreach (var point in kept)
            if (instead is { } s)
                points[point] = s;
            else
                points.Remove(point);
        return points;
    }

    private static IEnumerable<(string Name, Dictionary<HalfPoint, FloatStorage> Points)> Variants()
    {
        yield return ("fp32 (nothing rounded)", []);
        yield return ("bf16 everywhere", Everywhere(FloatStorage.BF16));
        yield return ("bf16, all weights fp32", Except(null, WeightPoints));
        yield return ("bf16, all activations fp32 (weights only bf16)", Except(null, [.. AllPoints.Except(WeightPoints)]));
        foreach (var point in AllPoints)
            yield return ($"bf16, {point} fp32", Except(null, point));
        yield return ("bf16, all weights fp16", Except(FloatStorage.F16, WeightPoints));
        foreach (var point in AllPoints.Except(WeightPoints))
            yield return ($"bf16, {point} fp16", Except(FloatStorage.F16, point));
        yield return ("fp16 everywhere", Everywhere(FloatStorage.F16));
    }

    private sealed record Summary(double RmsUnmerged, double MaxUnmerged, double MaxEqual, double MaxDiffering, int LayersDiffering, int Layers, int CasesDiffering, bool Top1Equal);

    private static IEnumerable<(string Model, string Case)> EveryCase() =>
        Fixtures.AllCases().Select(row => (row.Data.Item1, row.Data.Item2));

    private static Summary Measure(IEnumerable<(string Model, string Case)> cases, Func<IBackend> create, Precision precision,
        IReadOnlyDictionary<HalfPoint, FloatStorage> points)
    {
        double maxUnmerged = 0, maxEqual = 0, maxDiffering = 0, squaresUnmerged = 0;
        int unmerged = 0;
        int layersDiffering = 0, layers = 0, casesDiffering = 0;
        bool top1 = true;
        foreach (var (model, caseKey) in cases)
        {
            using var inner = create();
            var backend = new HalfStorageAblation(inner, Fixtures.Model(model).Config.Depth, points);
            var run = HalfForwardTests.Run(backend, model, caseKey, precision);
            if (run.Differing > 0)
                (maxDiffering, casesDiffering) = (Math.Max(maxDiffering, run.MaxError), casesDiffering + 1);
            else
                maxEqual = Math.Max(maxEqual, run.MaxError);
            if (run.Merging == 0)
                (maxUnmerged, squaresUnmerged, unmerged) = (Math.Max(maxUnmerged, run.MaxError), squaresUnmerged + run.RmsError * run.RmsError, unmerged + 1);
            layersDiffering += run.Differing;
            layers += run.Merging;
            top1 &= run.Top1Equal;
        }
        return new Summary(Math.Sqrt(squaresUnmerged / Math.Max(1, unmerged)), maxUnmerged, maxEqual, maxDiffering, layersDiffering, layers, casesDiffering, top1);
    }

    private static string Row(string name, Summary s) => string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {s.RmsUnmerged:0.00E+0} | {s.MaxUnmerged:0.00E+0} | {s.MaxEqual:0.00E+0} | {(s.CasesDiffering > 0 ? s.MaxDiffering.ToString("0.00E+0", CultureInfo.InvariantCulture) : "-")} | {Math.Max(s.MaxEqual, s.MaxDiffering):0.00E+0} | {s.LayersDiffering} of {s.Layers} ({s.CasesDiffering} cases) | {(s.Top1Equal ? "all equal" : "some differ")} |");

    private const string TableHeader =
        "| variant | rms error, r = 0 | max error, r = 0 | max error, decisions equal | max error, some differ | max error | merge layers differing | top-1 |\n" +
        "|---|---:|---:|---:|---:|---:|---:|---|";

    /// <summary>With nothing rounded the decorator is the fp32 engine: its own errors against float64, the same decisions.</summary>
    [Fact]
    public void NothingRoundedIsTheFp32Engine()
    {
        Fixtures.Folder(Fixtures.All[0]); // skips, naming what is missing
        var s = Measure(MixedCases, () => new CpuBackend(1), Precision.Float32, new Dictionary<HalfPoint, FloatStorage>());
        output.WriteLine(Row("fp32 (nothing rounded)", s));
        Assert.True(s.MaxEqual < 1e-4 && s.LayersDiffering == 0 && s.Top1Equal, $"nothing rounded should be the fp32 engine: {s}");
    }

    /// <summary>
    /// bf16 rounding at every storage point, on the fp32 kernels of the emulated device and of the CPU, gives the real bf16
    /// pass's rms error (its own kernels: cuBLASLt bf16 GEMMs, flash attention with P in bf16, the patch embedding in TF32)
    /// within 15 % on the unmerged cases: what the model leaves out adds nothing measurable (measured over the 8 unmerged
    /// fixture cases: 4.44e-3 real, 4.47e-3 emulated fp32 kernels, 4.60e-3 CPU; on these two cases 5.50e-3, 5.57e-3 and
    /// 5.72e-3). A model that rounds nothing, or misses one of the costlier storage points (keeping the LayerNorm output,
    /// qkv or the qkv weights in fp32 lowers the rms by 21, 18 and 16 %), falls outside.
    /// </summary>
    [Fact]
    public void Bf16RoundingEverywhereReproducesTheBf16PassesError()
    {
        Fixtures.Folder(Fixtures.All[0]);
        using (BackendPair.CreateGpu()) { } // skips, naming what is missing
        var real = Measure(UnmergedCases, BackendPair.CreateGpu, Precision.BFloat16, new Dictionary<HalfPoint, FloatStorage>());
        var emulated = Measure(UnmergedCases, BackendPair.CreateGpu, Precision.Float32, Everywhere(FloatStorage.BF16));
        var cpu = Measure(UnmergedCases, () => new CpuBackend(1), Precision.Float32, Everywhere(FloatStorage.BF16));
        output.WriteLine(TableHeader);
        output.WriteLine(Row("bf16 pass (its own kernels)", real));
        output.WriteLine(Row("fp32 kernels, bf16 rounding at every storage point", emulated));
        output.WriteLine(Row("CPU, bf16 rounding at every storage point", cpu));
        Assert.True(real.RmsUnmerged > 1e-3, $"the bf16 pass's rms error {real.RmsUnmerged:E2} is no bf16 error");
        foreach (var (name, model) in new[] { ("emulated device", emulated), ("CPU", cpu) })
        {
            double ratio = model.RmsUnmerged / real.RmsUnmerged;
            Assert.True(Math.Abs(ratio - 1) <= 0.15,
                $"{name}: bf16 rounding at every storage point gives rms {model.RmsUnmerged:E3}, the bf16 pass {real.RmsUnmerged:E3} (ratio {ratio:F3}, expected within 15 %)");
            Assert.True(model.Top1Equal, $"{name}: a top-1 differs from float64's");
        }
    }

    private static void RequireOptIn()
    {
        if (Environment.GetEnvironmentVariable("TOME_HALF_ABLATION") is not "1")
            Assert.Skip("a measurement, not a check: set TOME_HALF_ABLATION=1 to print the bf16 storage ablation table");
    }

    /// <summary>
    /// The ablation table, every variant over every fixture case on the CPU backend (fp32 arithmetic, the rounding at the
    /// storage points); opt-in. Rounding more never changes a top-1 of the fixtures.
    /// </summary>
    [Fact]
    public void AblationTableOnTheCpu()
    {
        RequireOptIn();
        Fixtures.Folder(Fixtures.All[0]);
        output.WriteLine(TableHeader);
        foreach (var (name, points) in Variants())
        {
            var s = Measure(EveryCase(), () => new CpuBackend(1), Precision.Float32, points);
            output.WriteLine(Row(name, s));
            Assert.True(s.Top1Equal, $"{name}: a top-1 differs from float64's");
            if (points.Count == 0)
                Assert.True(s.MaxEqual < 1e-4 && s.LayersDiffering == 0, $"nothing rounded should be the fp32 engine: {s}");
        }
    }

    /// <summary>
    /// The same rounding on the emulated CUDA device's fp32 kernels beside the bf16 pass's own kernels, over every fixture
    /// case; opt-in. What the rounding at the storage points does not model is the difference of the two.
    /// </summary>
    [Fact]
    public void AblationTableOnTheEmulatedDevice()
    {
        RequireOptIn();
        Fixtures.Folder(Fixtures.All[0]);
        using (BackendPair.CreateGpu()) { }
        output.WriteLine(TableHeader);
        foreach (var (name, precision, points) in new[]
        {
            ("bf16 pass (its own kernels)", Precision.BFloat16, new Dictionary<HalfPoint, FloatStorage>()),
            ("fp32 kernels, bf16 rounding at every storage point", Precision.Float32, Everywhere(FloatStorage.BF16)),
        })
        {
            var s = Measure(EveryCase(), BackendPair.CreateGpu, precision, points);
            output.WriteLine(Row(name, s));
            Assert.True(s.Top1Equal, $"{name}: a top-1 differs from float64's");
        }
    }
}
