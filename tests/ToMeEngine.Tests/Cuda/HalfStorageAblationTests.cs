using System.Globalization;
using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// Which half-stored tensor costs a bf16 pass most of its error: every golden fixture case through an fp32 forward whose
/// tensors are rounded where a half pass stores them (<see cref="HalfStorageAblation"/>), one tensor at a time kept in
/// fp32 or moved to fp16. Prints one table row per variant (bench/results/half-precision-emulated-*.md).
/// </summary>
public class HalfStorageAblationTests(ITestOutputHelper output)
{
    private static readonly HalfPoint[] AllPoints = Enum.GetValues<HalfPoint>();

    private static Dictionary<HalfPoint, FloatStorage> Everywhere(FloatStorage storage) => AllPoints.ToDictionary(p => p, _ => storage);

    private static readonly HalfPoint[] WeightPoints = [HalfPoint.QkvWeights, HalfPoint.ProjWeights, HalfPoint.Fc1Weights, HalfPoint.Fc2Weights];

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

    private static Summary Measure(Func<IBackend> create, Precision precision, IReadOnlyDictionary<HalfPoint, FloatStorage> points)
    {
        double maxUnmerged = 0, maxEqual = 0, maxDiffering = 0, squaresUnmerged = 0;
        int unmerged = 0;
        int layersDiffering = 0, layers = 0, casesDiffering = 0;
        bool top1 = true;
        foreach (var row in Fixtures.AllCases())
        {
            var (model, caseKey) = (row.Data.Item1, row.Data.Item2);
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

    /// <summary>
    /// Every variant on the CPU backend (fp32 arithmetic, the rounding at the storage points). The decorator with nothing
    /// rounded is transparent (the fp32 engine's own errors), and rounding more never changes a top-1 of the fixtures.
    /// </summary>
    [Fact]
    public void EachHalfStoredTensorsShareOfTheError()
    {
        Fixtures.Folder(Fixtures.All[0]); // skips, naming what is missing
        output.WriteLine("| variant | rms error, r = 0 | max error, r = 0 | max error, decisions equal | max error, some differ | max error | merge layers differing | top-1 |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var (name, points) in Variants())
        {
            var s = Measure(() => new CpuBackend(1), Precision.Float32, points);
            output.WriteLine(Row(name, s));
            Assert.True(s.Top1Equal, $"{name}: a top-1 differs from float64's");
            if (points.Count == 0)
                Assert.True(s.MaxEqual < 1e-4 && s.LayersDiffering == 0, $"nothing rounded should be the fp32 engine: {s}");
        }
    }

    /// <summary>
    /// The same rounding on the emulated CUDA device's fp32 kernels (its GEMMs and attention), beside the bf16 pass's
    /// own kernels (HalfForwardTests): what the rounding at the storage points does not model (P rounded to bf16 inside
    /// the flash kernel, the patch embedding in TF32) is the difference of the two.
    /// </summary>
    [Fact]
    public void Bf16RoundingOnTheEmulatedDevice()
    {
        Fixtures.Folder(Fixtures.All[0]);
        using (BackendPair.CreateGpu()) { } // skips, naming what is missing
        foreach (var (name, precision, points) in new[]
        {
            ("bf16 pass (its own kernels)", Precision.BFloat16, new Dictionary<HalfPoint, FloatStorage>()),
            ("fp32 kernels, bf16 rounding at every storage point", Precision.Float32, Everywhere(FloatStorage.BF16)),
        })
        {
            var s = Measure(BackendPair.CreateGpu, precision, points);
            output.WriteLine(Row(name, s));
            Assert.True(s.Top1Equal, $"{name}: a top-1 differs from float64's");
        }
    }
}
