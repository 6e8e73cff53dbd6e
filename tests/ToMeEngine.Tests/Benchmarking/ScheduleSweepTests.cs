using System.Globalization;
using System.Text.Json;
using ToMe.Benchmarking;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;

namespace ToMe.Tests.Benchmarking;

/// <summary>
/// tome eval's schedule sweep: every row equals what an engine loaded with that schedule alone classifies, images decoded
/// once and skipped once, the cost columns equal the schedule's plan; the CLI's table, CSV and JSON; and on ImageNet
/// samples (where ../shared is present) the rows agree with timm + official ToMe.
/// </summary>
public sealed class ScheduleSweepTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-sweep-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static readonly string[] Pictures = ["baseline_420_q90.jpg", "png_rgb.png", "gray_q90.jpg", "bmp_rgb.bmp", "png_palette.png"];

    private static readonly MergeSchedule[] Schedules = [MergeSchedule.Constant(0), MergeSchedule.Constant(40), MergeSchedule.Parse("[60,0,20]")];

    // ToMe at three schedules, then other strategies: random merging, kth (no schedule), ToMato (image-dependent tokens,
    // run as one batch).
    private static readonly (MergeStrategy Strategy, MergeSchedule Schedule)[] Variants =
    [
        .. Schedules.Select(s => (MergeStrategy.ToMe, s)),
        (MergeStrategy.Random(7), MergeSchedule.Constant(40)),
        (MergeStrategy.Kth(2), MergeSchedule.Constant(0)),
        (MergeStrategy.ToMato(0.5f), MergeSchedule.Constant(0)),
    ];

    private List<(string Path, int Label)> Samples(bool withBroken)
    {
        var samples = new List<(string, int)>();
        for (int i = 0; i < Pictures.Length; i++)
        {
            var path = Path.Combine(dir, Pictures[i]);
            File.Copy(RepoData.Path(Path.Combine("images", Pictures[i])), path, overwrite: true);
            samples.Add((path, i * 7 % 100));
            if (withBroken && i == 2)
            {
                var broken = Path.Combine(dir, "broken.jpg");
                File.WriteAllBytes(broken, [0xFF, 0xD8, 0xFF, 0x00]);
                samples.Add((broken, 1));
            }
        }
        return samples;
    }

    [Fact]
    public void EveryRowIsWhatThatVariantAloneClassifies()
    {
        var model = Fixtures.ModelPath("vit_p14_d3");
        var samples = Samples(withBroken: true);
        // Labels that make every column count something: the r = 0 top-1 for some images, its second class for others.
        using (var plain = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu }))
            for (int i = 0; i < samples.Count; i++)
                if (!samples[i].Path.EndsWith("broken.jpg", StringComparison.Ordinal))
                    samples[i] = (samples[i].Path, plain.Classify(samples[i].Path, 5)[i % 2].ClassIndex);

        var skipped = new List<string>();
        var predictions = new List<SweepPrediction>();
        IReadOnlyList<ScheduleEvaluation> rows;
        using (var engine = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu, MaxBatchSize = 2 }))
            rows = ScheduleSweep.Run(engine, samples, Variants, batch: 2, (path, _) => skipped.Add(path), predictions.Add);

        Assert.Equal([Path.Combine(dir, "broken.jpg")], skipped);
        Assert.Equal(Variants.Length * Pictures.Length, predictions.Count);
        var good = samples.Where(s => !s.Path.EndsWith("broken.jpg", StringComparison.Ordinal)).ToArray();
        int[]? firstTop1 = null;
        for (int s = 0; s < Variants.Length; s++)
        {
            var (strategy, schedule) = Variants[s];
            using var alone = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu, Schedule = schedule, Merge = strategy });
            var expected = good.Select(g => alone.Classify(g.Path, 5)).ToArray();
            firstTop1 ??= expected.Select(e => e[0].ClassIndex).ToArray();
            var mine = predictions.Where(p => p.Row == s).ToArray();
            Assert.Equal(good.Select(g => g.Path), mine.Select(p => p.Path));
            for (int i = 0; i < good.Length; i++)
                Assert.Equal(expected[i].Select(p => p.ClassIndex), mine[i].Top5.Select(p => p.ClassIndex));

            var row = rows[s];
            Assert.Same(schedule, row.Schedule);
            Assert.Equal(strategy, row.Merge);
            Assert.Equal(good.Length, row.Images);
            Assert.Equal(100.0 * good.Where((g, i) => expected[i][0].ClassIndex == g.Label).Count() / good.Length, row.Top1Percent, 9);
            Assert.Equal(100.0 * good.Where((g, i) => expected[i].Any(p => p.ClassIndex == g.Label)).Count() / good.Length, row.Top5Percent, 9);
            Assert.Equal(100.0 * expected.Where((e, i) => e[0].ClassIndex == firstTop1[i]).Count() / good.Length, row.SameTop1AsFirstPercent, 9);
            var config = alone.Config;
            if (strategy.Plan(schedule, config.Depth, config.Tokens, config.PrefixTokens) is var (tokens, mergedPerLayer, final))
            {
                Assert.Equal(final, row.FinalTokens, 9);
                Assert.Equal(FlopCounter.MultiplyAdds(config, tokens, mergedPerLayer) / 1e9, row.GigaMultiplyAddsPerImage, 9);
            }
            else
            {
                Assert.True(row.FinalTokens < config.Tokens && row.GigaMultiplyAddsPerImage < rows[0].GigaMultiplyAddsPerImage, "ToMato merges");
            }
            Assert.True(row.ImagesPerSecond > 0);
        }
        Assert.Equal((1.0, 1.0, 1.0), (rows[0].SpeedupLowerQuartile, rows[0].SpeedupOverFirst, rows[0].SpeedupUpperQuartile));
        Assert.All(rows, r => Assert.True(0 < r.SpeedupLowerQuartile && r.SpeedupLowerQuartile <= r.SpeedupOverFirst
            && r.SpeedupOverFirst <= r.SpeedupUpperQuartile, $"{r.Merge} {r.Schedule}: quartiles {r.SpeedupLowerQuartile}, {r.SpeedupOverFirst}, {r.SpeedupUpperQuartile}"));
        Assert.True(rows[0].Top1Percent is > 0 and < 100, "the labels were chosen so that r = 0 gets some right, some wrong");
    }

    [Fact]
    public void WithNoReadableImageEveryRowIsZeros()
    {
        var broken = Path.Combine(dir, "broken.png");
        File.WriteAllBytes(broken, [137, 80, 78, 71]);
        var skipped = new List<string>();
        using var engine = ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions { Backend = BackendKind.Cpu });
        var rows = engine.EvaluateSchedules([(broken, 0)], Schedules, batchSize: 4, (path, _) => skipped.Add(path));
        Assert.Equal([broken], skipped);
        Assert.All(rows, r => Assert.Equal((0, 0.0, 0.0, 0.0, 0.0), (r.Images, r.Top1Percent, r.FinalTokens, r.ImagesPerSecond, r.SpeedupOverFirst)));
        Assert.All(engine.EvaluateSchedules([], Schedules), r => Assert.Equal((0, 0.0), (r.Images, r.SpeedupOverFirst)));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.EvaluateSchedules([(broken, 0)], Schedules, batchSize: engine.Options.MaxBatchSize + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.EvaluateSchedules([(broken, 0)], []));
    }

    [Fact]
    public void EvalWithRepeatedRPrintsTheTableTheCsvAndJson()
    {
        var model = Fixtures.ModelPath("vit_p14_d3");
        var samples = Samples(withBroken: false);
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["filename,class_index", .. samples.Select(s => $"{Path.GetFileName(s.Path)},{s.Label}")]);
        var csv = Path.Combine(dir, "preds.csv");

        var (code, stdout, stderr) = TomeProcess.Run("eval", "--model", model, "--images", dir, "--backend", "cpu", "--batch", "3",
            "--r", "0", "--r", "16,-0.5", "--r", "[60,0,20]", "-o", csv);
        Assert.True(code == 0, stderr);
        Assert.Contains($"batch 3: {Pictures.Length} images", stdout);
        Assert.Contains("| tome | 0 | 257 |", stdout);
        Assert.Contains("| tome | (16,-0.5) |", stdout);
        Assert.Contains("| tome | [60,0,20] | 177 |", stdout);
        var lines = File.ReadAllLines(csv);
        Assert.Equal("merge,schedule,filename,true_index,pred1,pred2,pred3,pred4,pred5,prob1", lines[0]);
        Assert.Equal(1 + 3 * Pictures.Length, lines.Length);

        (code, stdout, stderr) = TomeProcess.Run("eval", "--model", model, "--images", dir, "--backend", "cpu", "--r", "0", "--r", "40", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var results = json.RootElement.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        Assert.Equal("40", results[1].GetProperty("schedule").GetString());
        Assert.Equal(Pictures.Length, results[1].GetProperty("images").GetInt32());
        Assert.Equal(100.0, results[0].GetProperty("same_top1_as_first_percent").GetDouble());

        // One schedule: the plain evaluation, the same JSON shape with one result.
        (code, stdout, stderr) = TomeProcess.Run("eval", "--model", model, "--images", dir, "--backend", "cpu", "--r", "13", "--json");
        Assert.True(code == 0, stderr);
        using (var single = JsonDocument.Parse(stdout))
        {
            var only = Assert.Single(single.RootElement.GetProperty("results").EnumerateArray());
            Assert.Equal(("13", Pictures.Length), (only.GetProperty("schedule").GetString(), only.GetProperty("images").GetInt32()));
        }

        // Strategies side by side: ToMe at each schedule, kth once (it reads no schedule).
        (code, stdout, stderr) = TomeProcess.Run("eval", "--model", model, "--images", dir, "--backend", "cpu",
            "--merge", "tome", "--merge", "kth", "--k", "2", "--r", "0", "--r", "13");
        Assert.True(code == 0, stderr);
        Assert.Contains("same top-1 as tome r = 0", stdout);
        Assert.Contains("| tome | 13 | 218 |", stdout);
        Assert.Contains("| kth(k=2) | - | 32 |", stdout);
        Assert.Equal(3, stdout.Split('\n').Count(l => l.StartsWith("| tome |", StringComparison.Ordinal) || l.StartsWith("| kth", StringComparison.Ordinal)));
        (code, _, stderr) = TomeProcess.Run("eval", "--model", model, "--images", dir, "--backend", "cpu", "--merge", "tome", "--merge", "random", "--k", "2");
        Assert.NotEqual(0, code);
        Assert.Contains("--k is given, but no --merge kth takes it", stderr);

        (code, _, stderr) = TomeProcess.Run("eval", "--model", model, "--images", dir, "--backend", "cpu", "--merge", "kth", "--k", "2", "--r", "0", "--r", "8");
        Assert.NotEqual(0, code);
        Assert.Contains("--r is given 2 times, but --merge kth(k=2) takes no schedule", stderr);
    }

    [Fact]
    public void OnImageNetSamplesTheRowsAgreeWithTimmAndOfficialToMe()
    {
        var modelPath = SharedData.Require("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        var folder = SharedData.Require("imagenet-samples");
        var reference = File.ReadAllLines(SharedData.Require("reference/top5.csv"));
        var header = reference[0].Split(',').ToList();
        var rows = reference.Skip(1).Take(96).Select(l => l.Split(',')).ToArray();
        var samples = rows.Select(r => (Path.Combine(folder, r[0]), int.Parse(r[1], CultureInfo.InvariantCulture))).ToList();
        int Column(string[] row, string name) => int.Parse(row[header.IndexOf(name)], CultureInfo.InvariantCulture);

        using var engine = ToMeEngine.Load(modelPath, new EngineOptions { Backend = BackendKind.Cpu });
        var sweep = engine.EvaluateSchedules(samples, [MergeSchedule.Constant(0), MergeSchedule.Constant(13)]);

        // timm's top-1 hits, and how often its r = 13 top-1 equals its r = 0 top-1; one image either way is a near-tie.
        double Hits(string column) => 100.0 * rows.Count(r => Column(r, column) == Column(r, "true_index")) / rows.Length;
        Assert.Equal(Hits("vit_r0_top1"), sweep[0].Top1Percent, 100.0 / rows.Length + 1e-9);
        Assert.Equal(Hits("vit_r13_top1"), sweep[1].Top1Percent, 100.0 / rows.Length + 1e-9);
        double same = 100.0 * rows.Count(r => Column(r, "vit_r13_top1") == Column(r, "vit_r0_top1")) / rows.Length;
        Assert.Equal(same, sweep[1].SameTop1AsFirstPercent, 100.0 / rows.Length + 1e-9);
        Assert.Equal(41, sweep[1].FinalTokens);
    }
}
