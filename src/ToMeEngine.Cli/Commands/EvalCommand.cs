using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using ToMe.Model;

namespace ToMe.Cli.Commands;

/// <summary><c>tome eval</c>: top-1 / top-5 accuracy over a labelled folder of images; bad files are reported and skipped.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var images = new Option<string>("--images")
        {
            Description = "folder of images: with labels.csv (filename,class_index; RFC 4180 quoting), or class subfolders each named by "
                          + LabelledImages.FolderRule,
            Required = true,
        };
        var labels = new Option<string?>("--labels") { Description = "CSV with columns filename,class_index (default: IMAGES/labels.csv if present)" }.InputFile();
        var batch = new Option<int>("--batch", "-b") { Description = "images per forward pass", DefaultValueFactory = _ => 16 };
        var output = new Option<string?>("--output", "-o")
        {
            Description = "write per-image predictions as CSV: filename,true_index,pred1..pred5,prob1, the filename relative to --images; "
                          + "with several --r or --merge, merge,schedule come first and each image has a row per variant",
        }.OutputFile();
        var limit = new Option<int>("--limit") { Description = "evaluate only the first N images (0 = all)" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var engineOptions = new EngineCliOptions(manySchedules: true);
        var command = new Command("eval", "top-1/top-5 accuracy over a labelled folder of images (repeat --r or --merge to compare merge schedules and strategies)")
        {
            images, labels, batch, output, limit, json,
        };
        engineOptions.AddTo(command);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            int batchSize = parse.GetValue(batch);
            if (batchSize < 1)
                throw new ArgumentException("--batch must be at least 1");
            int count = parse.GetValue(limit);
            if (count < 0)
                throw new ArgumentException($"--limit {count}: must be 0 (all images) or a positive number of images");
            var dir = parse.GetValue(images)!;
            if (!Directory.Exists(dir))
                throw new DirectoryNotFoundException($"--images {dir}: no such folder");
            var variants = EvalSweep.Variants(engineOptions.Strategy.ParseAll(parse), engineOptions.ParseSchedules(parse));
            using var engine = engineOptions.Load(parse, batchSize);
            DeviceNotes.WarnIfEmulated(engine.OnEmulatedCuda); // eval prints images/s and speed-ups
            // Labels are checked against the model's classes, so they are read once the model is known.
            var samples = LabelledImages.Read(dir, parse.GetValue(labels), engine.Config.NumClasses);
            if (count > 0)
                samples = samples.Take(count).ToList();
            if (variants.Count > 1)
                return EvalSweep.Run(engine, dir, samples, variants, batchSize, parse.GetValue(output), parse.GetValue(json));
            Console.WriteLine(Evaluate(engine, dir, samples, batchSize, parse.GetValue(output), parse.GetValue(json)));
            return 0;
        }));
        return command;
    }

    private static string Evaluate(ToMeEngine engine, string dir, IReadOnlyList<(string Path, int Label)> samples, int batchSize, string? outputPath, bool asJson)
    {
        var inv = CultureInfo.InvariantCulture;
        var csv = outputPath is null ? null : new StringBuilder("filename,true_index,pred1,pred2,pred3,pred4,pred5,prob1\n");
        int done = 0, top1 = 0, top5 = 0, bad = 0;
        bool terminal = !Console.IsErrorRedirected;
        var clock = Stopwatch.StartNew();
        // The engine's input pipeline: files decode on every core while the previous batch runs, results come in order.
        var results = engine.ClassifyManyAsync(samples.Select(s => s.Path), topK: 5).ToBlockingEnumerable();
        foreach (var result in results)
        {
            int label = samples[result.Index].Label;
            if (!result.Succeeded)
            {
                bad++;
                Console.Error.WriteLine($"{(terminal ? "\r" : "")}skipped {result.Input}: {result.Error.Message}");
            }
            else
            {
                var best = result.Predictions;
                if (best[0].ClassIndex == label)
                    top1++;
                if (best.Any(p => p.ClassIndex == label))
                    top5++;
                done++;
                csv?.Append(string.Create(inv, $"{EvalSweep.CsvName(dir, result.Input)},{label},{string.Join(",", best.Select(p => p.ClassIndex))},{best[0].Probability:R}\n"));
            }
            int seen = done + bad;
            if (seen % batchSize != 0 && seen != samples.Count)
                continue;
            double rate = done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            string progress = string.Create(inv,
                $"{EvalSweep.Progress(seen, samples.Count, bad)}, top-1 {Percent(top1, done):F1}%, top-5 {Percent(top5, done):F1}%, {rate:F1} images/s");
            if (terminal)
                Console.Error.Write($"\r{progress}   ");
            else if ((seen / batchSize) % 10 == 0 || seen == samples.Count)
                Console.Error.WriteLine(progress);
        }
        if (terminal)
            Console.Error.WriteLine();
        EvalSweep.RequireAny(done, samples.Count);
        if (csv is not null)
            File.WriteAllText(outputPath!, csv.ToString());
        string skipped = bad > 0 ? $" ({bad} unreadable, skipped)" : "";
        double perSecond = done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        if (asJson)
        {
            // The same fields as a comparison's first row; what this pipelined run does not time alone (the forward passes) is null.
            var config = engine.Config;
            var merge = engine.Options.Merge;
            var plan = merge.Plan(engine.Options.Schedule, config.Depth, config.Tokens, config.PrefixTokens);
            return EvalSweep.Json(engine, batchSize, bad, [new EvalSweep.Row(
                merge.ToString(),
                merge.UsesSchedule ? engine.Options.Schedule.ToString() : "-",
                done,
                plan?.FinalTokens,
                plan is { } p ? FlopCounter.MultiplyAdds(config, p.TokensPerLayer, p.MergedPerLayer) / 1e9 : null,
                Percent(top1, done),
                Percent(top5, done),
                SameTop1AsFirstPercent: 100,
                ImagesPerSecond: null,
                SpeedupOverFirst: 1, SpeedupLowerQuartile: 1, SpeedupUpperQuartile: 1,
                ImagesPerSecondEndToEnd: perSecond)]);
        }
        return string.Create(inv,
            $"{engine.Config.Architecture} ({engine.BackendName} {engine.Precision.Name()}), merge {engine.Options.Merge}, r = {engine.Options.Schedule}: top-1 {Percent(top1, done):F2}%  top-5 {Percent(top5, done):F2}%  over {done} images{skipped}, {perSecond:F1} images/s");
    }

    private static double Percent(int n, int total) => total == 0 ? 0 : 100.0 * n / total;
}
