using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using ToMe.Imaging;

namespace ToMe.Cli.Commands;

/// <summary><c>tome eval</c>: top-1 / top-5 accuracy over a labelled folder of images; bad files are reported and skipped.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var images = new Option<string>("--images") { Description = "folder of images: with labels.csv (filename,class_index), or ImageNet-style class subfolders", Required = true };
        var labels = new Option<string?>("--labels") { Description = "CSV with columns filename,class_index (default: IMAGES/labels.csv if present)" }.InputFile();
        var batch = new Option<int>("--batch", "-b") { Description = "images per forward pass", DefaultValueFactory = _ => 16 };
        var output = new Option<string?>("--output", "-o") { Description = "write per-image predictions: filename,true_index,pred1..pred5,prob1" }.OutputFile();
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
            var dir = parse.GetValue(images)!;
            if (!Directory.Exists(dir))
                throw new DirectoryNotFoundException($"--images {dir}: no such folder");
            var samples = LabelledImages.Read(dir, parse.GetValue(labels));
            if (parse.GetValue(limit) > 0)
                samples = samples.Take(parse.GetValue(limit)).ToList();
            var variants = EvalSweep.Variants(engineOptions.Strategy.ParseAll(parse), engineOptions.ParseSchedules(parse));
            using var engine = engineOptions.Load(parse, batchSize);
            if (variants.Count > 1)
                return EvalSweep.Run(engine, samples, variants, batchSize, parse.GetValue(output), parse.GetValue(json));
            var report = Evaluate(engine, samples, batchSize, parse.GetValue(output), parse.GetValue(json));
            Console.WriteLine(report);
            return 0;
        }));
        return command;
    }

    private static string Evaluate(ToMeEngine engine, IReadOnlyList<(string Path, int Label)> samples, int batchSize, string? outputPath, bool asJson)
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
                csv?.Append(string.Create(inv, $"{Path.GetFileName(result.Input)},{label},{string.Join(",", best.Select(p => p.ClassIndex))},{best[0].Probability:R}\n"));
            }
            int seen = done + bad;
            if (seen % batchSize != 0 && seen != samples.Count)
                continue;
            double rate = done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            string progress = string.Create(inv, $"{seen}/{samples.Count} images, top-1 {Percent(top1, done):F1}%, top-5 {Percent(top5, done):F1}%, {rate:F1} images/s");
            if (terminal)
                Console.Error.Write($"\r{progress}   ");
            else if ((seen / batchSize) % 10 == 0 || seen == samples.Count)
                Console.Error.WriteLine(progress);
        }
        if (terminal)
            Console.Error.WriteLine();
        if (csv is not null)
            File.WriteAllText(outputPath!, csv.ToString());
        string skipped = bad > 0 ? $" ({bad} unreadable, skipped)" : "";
        double perSecond = done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        if (asJson)
            return EvalSweep.Json(engine, batchSize, bad, new[]
            {
                new
                {
                    schedule = engine.Options.Merge.UsesSchedule ? engine.Options.Schedule.ToString() : "-",
                    images = done,
                    top1_percent = Percent(top1, done),
                    top5_percent = Percent(top5, done),
                    images_per_second_end_to_end = perSecond,
                },
            });
        return string.Create(inv,
            $"{engine.Config.Architecture} ({engine.BackendName} {engine.Precision.Name()}), merge {engine.Options.Merge}, r = {engine.Options.Schedule}: top-1 {Percent(top1, done):F2}%  top-5 {Percent(top5, done):F2}%  over {done} images{skipped}, {perSecond:F1} images/s");
    }

    private static double Percent(int n, int total) => total == 0 ? 0 : 100.0 * n / total;
}

/// <summary>A labelled image folder: a labels.csv (filename,class_index[,...]) or class subfolders in sorted order.</summary>
internal static class LabelledImages
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm", ".gif", ".webp", ".tif", ".tiff"];

    public static List<(string Path, int Label)> Read(string dir, string? labelsPath)
    {
        labelsPath ??= File.Exists(Path.Combine(dir, "labels.csv")) ? Path.Combine(dir, "labels.csv") : null;
        if (labelsPath is not null)
            return ReadCsv(dir, labelsPath);
        var classes = Directory.GetDirectories(dir).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0)
            throw new FileNotFoundException($"{dir}: neither a labels.csv nor class subfolders");
        var result = new List<(string, int)>();
        for (int c = 0; c < classes.Length; c++)
            foreach (var file in Directory.GetFiles(classes[c]).Where(IsImage).Order(StringComparer.Ordinal))
                result.Add((file, c));
        return result;
    }

    internal static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    private static List<(string, int)> ReadCsv(string dir, string labelsPath)
    {
        var lines = File.ReadAllLines(labelsPath);
        if (lines.Length == 0)
            throw new FormatException($"{labelsPath}: empty");
        var header = lines[0].Split(',').Select(h => h.Trim()).ToList();
        int fileColumn = header.IndexOf("filename"), labelColumn = header.IndexOf("class_index");
        if (fileColumn < 0 || labelColumn < 0)
            throw new FormatException($"{labelsPath}: the header must name columns 'filename' and 'class_index', found '{lines[0]}'");
        var result = new List<(string, int)>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
                continue;
            var fields = lines[i].Split(',');
            if (fields.Length <= Math.Max(fileColumn, labelColumn) || !int.TryParse(fields[labelColumn].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int label))
                throw new FormatException($"{labelsPath}:{i + 1}: expected filename,class_index, found '{lines[i]}'");
            result.Add((Path.Combine(dir, fields[fileColumn].Trim()), label));
        }
        return result;
    }
}
