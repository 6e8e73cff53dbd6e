using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Benchmarking;
using ToMe.Merging;
using ToMe.Model;

namespace ToMe.Cli.Commands;

/// <summary><c>tome bench</c>: images/s of the forward pass at several merge schedules (ToMe's method).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = "model folder / .safetensors, or a timm architecture name with --random-weights (e.g. vit_base_patch16_224)" + ModelOptions.DefaultModelNote,
        };
        var random = new Option<bool>("--random-weights") { Description = "seeded random weights for the named architecture" };
        var backend = new Option<string>("--backend") { Description = "cpu, cuda, or auto (cuda when a device is usable)", DefaultValueFactory = _ => "cpu" };
        var batch = new Option<int>("--batch", "-b") { Description = "images per forward", DefaultValueFactory = _ => 16 };
        var schedules = new Option<string[]>("--r")
        {
            Description = "schedules to measure: a comma list of r values (0,8,13,16), or repeat --r with any schedule ((16,-0.5), [8,8,4,0])",
            DefaultValueFactory = _ => ["0,8,13,16"],
            AllowMultipleArgumentsPerToken = false,
        }.Check((string text) => ParseSchedules([text]));
        var warmup = new Option<int>("--warmup") { Description = "untimed runs per schedule", DefaultValueFactory = _ => 2 };
        var runs = new Option<int>("--runs") { Description = "timed runs per schedule (the first quarter is discarded)", DefaultValueFactory = _ => 8 };
        var threads = ModelOptions.Threads();
        var precision = ModelOptions.Precision();
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var images = new Option<string?>("--images") { Description = "end-to-end mode: decode rate, forward rate and end-to-end images/s over the image files in this folder, and which stage bounds the run" };
        var limit = new Option<int>("--limit") { Description = "end-to-end mode: at most this many files (0 = all)" };
        // Bounded as --threads is: each decoder holds a decoded image and its own thread.
        var decodeThreads = new Option<int>("--decode-threads") { Description = $"end-to-end mode: images decoded at once (0 = one per core, at most {EngineOptions.MaxThreads})" }
            .Check((int n) =>
            {
                if (n is < 0 or > EngineOptions.MaxThreads)
                    throw new ArgumentException($"must be 0 (one per core) or 1 to {EngineOptions.MaxThreads}");
            });
        var noPropAttn = new Option<bool>("--no-prop-attn") { Description = "turn proportional attention off" };
        var profile = new Option<bool>("--profile") { Description = "also time every op and print where the forward's time goes (cpu backend)" };
        var profileThreadTime = new Option<bool>("--profile-thread-time") { Description = "with --profile (Linux): charge each op of an image its thread's CPU time, steady on a shared machine (time other processes held the cores then shows under outside ops)" };
        var strategy = new StrategyOptions();
        var command = new Command("bench", "measure images/s of the forward pass at several merge schedules (or end to end from image files)")
        {
            model, random, backend, precision, batch, schedules, warmup, runs, threads, json, images, limit, decodeThreads, noPropAttn, profile, profileThreadTime,
        };
        foreach (var option in strategy.All)
            command.Options.Add(option);
        command.Subcommands.Add(DecodeBenchCommand.Create());
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var backendName = parse.GetValue(backend)!;
            if (!BackendFactory.Names.Contains(backendName))
                throw new ArgumentException($"--backend '{backendName}' is not available (expected {string.Join(", ", BackendFactory.Names)})");
            var requested = ModelOptions.ParsePrecision(parse, precision);
            int b = parse.GetValue(batch), n = parse.GetValue(runs), w = parse.GetValue(warmup);
            if (b < 1 || n < 1 || w < 0)
                throw new ArgumentException("--batch and --runs must be >= 1, --warmup >= 0");
            var name = parse.GetValue(model);
            var weights = parse.GetValue(random)
                ? ModelWeights.Random(ModelConfigReader.FromArchitectureName(name ?? throw new ArgumentException("--random-weights needs --model ARCHITECTURE (e.g. vit_base_patch16_224)")), seed: 0)
                : ModelLoader.Load(name ?? DefaultModel.Find());
            var list = ParseSchedules(parse.GetValue(schedules)!);
            var merge = strategy.Parse(parse);
            bool asJson = parse.GetValue(json);
            if (parse.GetValue(images) is { } folder)
            {
                return EndToEnd(weights, backendName, folder, parse.GetValue(limit), b, list, merge, !parse.GetValue(noPropAttn), parse.GetValue(threads),
                    parse.GetValue(decodeThreads), requested, asJson);
            }
            bool profiled = parse.GetValue(profile);
            bool cpuTimed = parse.GetValue(profileThreadTime);
            if (cpuTimed && (!profiled || !ThreadCpuClock.IsAvailable))
                throw new ArgumentException("--profile-thread-time needs --profile, on Linux");
            using var engine = BackendFactory.Create(backendName, parse.GetValue(threads), precision: requested);
            var resolved = engine.ResolvePrecision(requested);
            if (profiled && engine is not CpuBackend)
                throw new NotSupportedException($"--profile times each op on the host clock, which needs --backend cpu ({engine.Name} runs its ops asynchronously)");
            bool emulated = DeviceNotes.WarnIfEmulated(BackendFactory.Cuda(engine) is { Device.IsEmulated: true });
            var timings = ForwardBenchmark.Run(engine, weights, b, list, merge, w, n, !parse.GetValue(noPropAttn),
                log: asJson ? null : Console.Error.WriteLine, profile: profiled, precision: resolved, profileThreadTime: cpuTimed);
            var machine = $"{engine.DeviceName}, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
            int threadCount = engine is CpuBackend cpu ? cpu.MaxThreads : 0;
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    model = weights.Config.Architecture,
                    backend = engine.Name,
                    emulated,
                    precision = resolved.Name(),
                    threads = threadCount,
                    batch = b,
                    machine,
                    results = timings,
                }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
                return 0;
            }
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"{weights.Config.Architecture}, {engine.Name} {resolved.Name()}, batch {b} ({machine})");
            Console.WriteLine("| merge | r | final tokens | ms/batch | images/s | GFLOPs/image | achieved GFLOP/s | speed-up |");
            Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
            foreach (var t in timings)
                Console.WriteLine(string.Create(inv,
                    $"| {t.Merge} | {t.Schedule} | {t.FinalTokens} | {t.MillisecondsPerBatch:F1} | {t.ImagesPerSecond:F1} | {t.GigaMultiplyAddsPerImage:F3} | {t.AchievedGigaFlops:F1} | {(t.SpeedupOverBaseline is double x ? x.ToString("F2", inv) + "x" : "-")} |"));
            foreach (var t in timings.Where(t => t.Profile is not null))
            {
                Console.WriteLine();
                Console.WriteLine($"Where the time goes, {t.Merge} r = {t.Schedule} (mean of the {n} timed runs):");
                if (t.ProfileThreads is int summed and > 1)
                    Console.WriteLine($"Images ran in parallel, one per thread: ms are thread-time summed over the {summed} threads, "
                        + $"and % is of the forward's wall time × {summed}.");
                if (cpuTimed)
                    Console.WriteLine("Ops inside an image are charged their thread's CPU time; time other processes held the cores is under outside ops.");
                Console.WriteLine(t.ProfileThreads is > 1
                    ? "| op | calls/forward | thread-ms/forward | % of forward |"
                    : "| op | calls/forward | ms/forward | % of forward |");
                Console.WriteLine("|---|---:|---:|---:|");
                foreach (var op in t.Profile!)
                    Console.WriteLine(string.Create(inv, $"| {op.Op} | {op.CallsPerForward:0.#} | {op.MillisecondsPerForward:F2} | {op.PercentOfForward:F1} |"));
            }
            return 0;
        }));
        return command;
    }

    private static int EndToEnd(Model.ModelWeights weights, string backendName, string folder, int limit, int batch, List<MergeSchedule> schedules,
        MergeStrategy merge, bool propAttn, int threads, int decodeThreads, Precision precision, bool asJson)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"--images {folder}: no such folder");
        var files = Directory.EnumerateFiles(folder).Where(LabelledImages.IsImage)
            .Order(StringComparer.Ordinal).Take(limit > 0 ? limit : int.MaxValue).ToList();
        if (files.Count == 0)
            throw new FileNotFoundException($"--images {folder}: no image files");
        var inv = CultureInfo.InvariantCulture;
        var rows = new List<EndToEndTiming>();
        int decoders = decodeThreads > 0 ? decodeThreads : Environment.ProcessorCount;
        double decodeRate = 0, coresBusy = 0;
        int readable = 0;
        float[][] sample = [];
        string ranOn = backendName, ranIn = precision.Name();   // what auto resolved to, for the JSON
        foreach (var schedule in schedules)
        {
            using var engine = ToMeEngine.Create(weights, new EngineOptions
            {
                Backend = EngineCliOptions.ParseBackend(backendName),
                Precision = precision, Schedule = schedule, Merge = merge, ProportionalAttention = propAttn, Threads = threads, MaxBatchSize = batch,
                Decode = BridgeDecoding.Options,
                WarmUp = false, // timed after a warm-up of its own
            });
            if (rows.Count == 0)
            {
                DeviceNotes.WarnIfEmulated(engine.OnEmulatedCuda);
                (ranOn, ranIn) = (engine.BackendName, engine.Precision.Name());
                EndToEndBenchmark.Decode(engine, files.Take(batch).ToList(), decodeThreads, keep: 0); // warm-up
                (decodeRate, coresBusy, readable, sample) = EndToEndBenchmark.Decode(engine, files, decodeThreads, keep: batch);
                if (readable == 0)
                    throw new InvalidDataException($"--images {folder}: none of the {files.Count} files decoded");
                if (!asJson)
                {
                    var counted = readable == files.Count ? $"{files.Count} files" : $"{readable} of {files.Count} files ({files.Count - readable} unreadable, skipped)";
                    Console.WriteLine(string.Create(inv,
                        $"{weights.Config.Architecture}, {engine.BackendName} {engine.Precision.Name()}, {counted} in {folder}, batch {batch}; {decoders} decode threads kept {coresBusy:F2} cores busy"));
                    Console.WriteLine("| merge | r | decode images/s | forward images/s | end to end images/s | bound by |");
                    Console.WriteLine("|---|---|---:|---:|---:|---|");
                }
            }
            double forwardRate = EndToEndBenchmark.Forward(engine, sample, Math.Max(2, (readable + batch - 1) / batch));
            EndToEndBenchmark.Run(engine, files.Take(batch).ToList(), decodeThreads); // warm-up
            double endToEnd = EndToEndBenchmark.Run(engine, files, decodeThreads);
            var t = new EndToEndTiming(merge.ToString(), merge.UsesSchedule ? schedule.ToString() : "-", readable, files.Count - readable, batch, decoders,
                decodeRate, coresBusy, forwardRate, endToEnd, decodeRate < forwardRate ? "decode" : "forward");
            rows.Add(t);
            if (!asJson)
                Console.WriteLine(string.Create(inv,
                    $"| {t.Merge} | {t.Schedule} | {t.DecodeImagesPerSecond:F1} | {t.ForwardImagesPerSecond:F1} | {t.ImagesPerSecond:F1} | {t.BoundBy} |"));
        }
        if (asJson)
            Console.WriteLine(JsonSerializer.Serialize(new { model = weights.Config.Architecture, backend = ranOn, precision = ranIn, mode = "end-to-end", results = rows },
                new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        return 0;
    }

    /// <summary>"0,8,13,16" is four constant schedules; a value with parentheses or brackets is one schedule.</summary>
    internal static List<MergeSchedule> ParseSchedules(IEnumerable<string> values)
    {
        var result = new List<MergeSchedule>();
        foreach (var value in values)
        {
            var parts = value.Split(',');
            if (!value.Contains('(') && !value.Contains('[') && parts.All(p => int.TryParse(p.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out _)))
                result.AddRange(parts.Select(p => MergeSchedule.Constant(int.Parse(p.Trim(), CultureInfo.InvariantCulture))));
            else
                result.Add(MergeSchedule.Parse(value));
        }
        return result;
    }
}
