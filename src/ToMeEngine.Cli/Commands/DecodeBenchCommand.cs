using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ToMe.Benchmarking;
using ToMe.Imaging;
using ToMe.Model;

namespace ToMe.Cli.Commands;

/// <summary>
/// <c>tome bench decode --images DIR</c>: images/s of decode + timm preprocessing on one thread, with an
/// optional per-stage profile. Files no decoder reads are named and skipped. <c>--stdin</c> runs one pass per input line, so that a driver can
/// interleave it with another decoder.
/// </summary>
internal static class DecodeBenchCommand
{
    public static Command Create()
    {
        var images = new Option<string>("--images") { Description = "folder of image files (read into memory before timing)", Required = true };
        var model = new Option<string?>("--model", "-m")
        {
            Description = "preprocessing of this model: a model folder (its config.json) or a timm architecture name; " +
                          "default vit_tiny_patch16_224.augreg_in21k_ft_in1k (resize 248, crop 224, mean = std = 0.5)",
        };
        var limit = new Option<int>("--limit") { Description = "at most this many files (0 = all)" };
        var rounds = new Option<int>("--rounds") { Description = "timed passes over all files", DefaultValueFactory = _ => 5 };
        var profile = new Option<bool>("--profile") { Description = "add a pass with per-stage clocks (entropy decode, IDCT, upsampling, colour conversion, resize, normalize)" };
        var stdin = new Option<bool>("--stdin") { Description = "print 'ready', then time one pass per line read from stdin and print its wall-clock and CPU seconds (for interleaved comparisons)" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var decodeOnly = new Option<bool>("--decode-only") { Description = "time decoding alone: whole pictures to interleaved RGB (ImageDecoder.Decode), no preprocessing" };
        var command = new Command("decode", "measure images/s of decode + preprocessing on the calling thread (no model forward)")
        {
            images, model, limit, rounds, profile, stdin, json, decodeOnly,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var folder = parse.GetValue(images)!;
            if (!Directory.Exists(folder))
                throw new DirectoryNotFoundException($"--images {folder}: no such folder");
            int n = parse.GetValue(rounds), max = parse.GetValue(limit);
            if (n < 1 || max < 0)
                throw new ArgumentException("--rounds must be >= 1 and --limit >= 0");
            var config = Preprocessing(parse.GetValue(model));
            var paths = Directory.EnumerateFiles(folder).Where(LabelledImages.IsImage)
                .Order(StringComparer.Ordinal).Take(max > 0 ? max : int.MaxValue).ToList();
            if (paths.Count == 0)
                throw new FileNotFoundException($"--images {folder}: no image files");
            var only = parse.GetValue(decodeOnly);
            var (readable, skipped) = Readable(paths, config, only);
            if (readable.Count == 0)
                throw new InvalidDataException($"--images {folder}: none of the {paths.Count} files decoded");
            var bench = new PreprocessBenchmark(readable, config, BridgeDecoding.Options, decodeOnly: only);
            // Warm-up: the JIT promotes hot methods to optimized code in the background, after a delay and
            // some thousands of calls; timing before that would charge compilation to the decoder.
            for (var done = 0; done < Math.Max(2 * bench.Images, 1000); done += bench.Images)
                bench.Pass();
            if (parse.GetValue(stdin))
                return Serve(bench);

            var passes = Enumerable.Range(0, n).Select(_ => bench.Pass()).ToList();
            var seconds = passes.Select(p => p.Wall).ToList();
            var median = Median(seconds);
            var cpuMedian = Median(passes.Select(p => p.Cpu).ToList());
            var stages = parse.GetValue(profile) ? bench.ProfiledPass() : [];
            var inv = CultureInfo.InvariantCulture;
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    images = bench.Images,
                    skipped,
                    mode = only ? "decode" : "decode+preprocess",
                    img_size = config.ImgSize,
                    scale_size = config.ScaleSize,
                    threads = 1,
                    machine = $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
                    seconds_per_round = seconds,
                    cpu_seconds_per_round = passes.Select(p => p.Cpu),
                    images_per_second = bench.Images / median,
                    images_per_cpu_second = bench.Images / cpuMedian,
                    stage_clock = ImagingProfile.CpuTime ? "thread CPU time" : "wall clock",
                    stages = stages.Select(s => new { stage = s.Stage, ms_per_image = 1000 * s.Seconds / bench.Images }),
                }, new JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            Console.WriteLine(string.Create(inv,
                $"{(only ? "decode to RGB" : $"decode + preprocess ({config.ScaleSize} -> {config.ImgSize})")}, 1 thread, {bench.Images} files{(skipped > 0 ? $" ({skipped} unreadable, skipped)" : "")}: {bench.Images / median:F1} images/s, {bench.Images / cpuMedian:F1} per CPU second (medians of {n} passes)"));
            if (stages.Count > 0)
            {
                var total = stages.Sum(s => s.Seconds);
                Console.WriteLine(ImagingProfile.CpuTime ? "per-stage CPU time of one pass:" : "per-stage wall-clock time of one pass:");
                Console.WriteLine("| stage | ms/image | share |");
                Console.WriteLine("|---|---:|---:|");
                foreach (var (stage, s) in stages)
                    Console.WriteLine(string.Create(inv, $"| {stage} | {1000 * s / bench.Images:F3} | {100 * s / total:F1}% |"));
                Console.WriteLine(string.Create(inv, $"| total (profiled pass) | {1000 * total / bench.Images:F3} | |"));
            }
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// The files read and decoded once, untimed, with the decoders classify and eval use; one that fails is named on
    /// stderr and left out, as eval does, so one bad file does not end the measurement.
    /// </summary>
    private static (List<byte[]> Files, int Skipped) Readable(List<string> paths, PreprocessConfig config, bool decodeOnly)
    {
        var pre = new Preprocessor(config);
        var files = new List<byte[]>();
        int skipped = 0;
        foreach (var path in paths)
        {
            try
            {
                var bytes = File.ReadAllBytes(path);
                if (decodeOnly)
                    ImageDecoder.Decode(bytes, BridgeDecoding.Options);
                else
                    pre.Run(bytes, BridgeDecoding.Options);
                files.Add(bytes);
            }
            catch (Exception e) when (e is InvalidImageException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"skipped {path}: {e.Message}");
                skipped++;
            }
        }
        return (files, skipped);
    }

    private static int Serve(PreprocessBenchmark bench)
    {
        Console.WriteLine("ready");
        while (Console.ReadLine() is not null)
        {
            var (wall, cpu) = bench.Pass();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{wall:R} {cpu:R}"));
        }
        return 0;
    }

    private static PreprocessConfig Preprocessing(string? model)
    {
        model ??= "vit_tiny_patch16_224.augreg_in21k_ft_in1k";
        var hubConfig = Path.Combine(model, "config.json");
        return (Directory.Exists(model)
            ? ModelConfigReader.FromHubConfig(File.ReadAllText(hubConfig), hubConfig)
            : ModelConfigReader.FromArchitectureName(model)).Preprocess;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
