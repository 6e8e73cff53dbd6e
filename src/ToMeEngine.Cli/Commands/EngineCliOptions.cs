using System.CommandLine;
using ToMe.Model;

namespace ToMe.Cli.Commands;

/// <summary>The options that build a <see cref="ToMeEngine"/> from the command line, shared by classify, eval and visualize.</summary>
internal sealed class EngineCliOptions
{
    public Option<string> Model { get; } = ModelOptions.Model();

    // One --r, or (eval) one per schedule to compare.
    private readonly Option<string>? schedule;
    private readonly Option<string[]>? schedules;

    /// <param name="manySchedules">--r and --merge may be repeated, one schedule or strategy each (tome eval's comparison).</param>
    public EngineCliOptions(bool manySchedules = false)
    {
        Strategy = new StrategyOptions(manySchedules);
        if (manySchedules)
            schedules = ModelOptions.Schedules();
        else
            schedule = ModelOptions.Schedule();
    }

    private Option ScheduleOption => (Option?)schedule ?? schedules!;

    /// <summary>The --r values as merge schedules, in the order given (one where --r is not repeatable).</summary>
    public IReadOnlyList<Merging.MergeSchedule> ParseSchedules(ParseResult parse) =>
        schedule is not null
            ? [Merging.MergeSchedule.Parse(parse.GetValue(schedule)!)]
            : parse.GetValue(schedules!)!.Select(Merging.MergeSchedule.Parse).ToArray();

    public StrategyOptions Strategy { get; }
    public Option<bool> NoPropAttn { get; } = new("--no-prop-attn") { Description = "turn proportional attention off" };
    public Option<string> Backend { get; } = new("--backend") { Description = "cpu, cuda, or auto (cuda when a device is usable)", DefaultValueFactory = _ => "auto" };
    public Option<int> Threads { get; } = ModelOptions.Threads();
    public Option<string> Precision { get; } = ModelOptions.Precision();

    // A server facing untrusted uploads may want less: decoding holds 3 bytes per pixel, more while resizing.
    public Option<long> MaxPixels { get; } = new Option<long>("--max-pixels")
    {
        Description = $"refuse images declaring more pixels than this, before decoding them (default {Imaging.DecodeOptions.Default.MaxPixels})",
        DefaultValueFactory = _ => Imaging.DecodeOptions.Default.MaxPixels,
    }.Check((long n) =>
    {
        if (n < 1)
            throw new ArgumentException("must be at least 1");
    });

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Model, ScheduleOption, NoPropAttn, Backend, Precision, Threads, MaxPixels }.Concat(Strategy.All))
            command.Options.Add(option);
    }

    /// <summary>The engine's backend for a --backend value; an unknown name is refused, never taken for auto.</summary>
    public static BackendKind ParseBackend(string? name) => name switch
    {
        "cpu" => BackendKind.Cpu,
        "cuda" => BackendKind.Cuda,
        "auto" => BackendKind.Auto,
        var other => throw new ArgumentException($"--backend '{other}' is not available (expected cpu, cuda or auto)"),
    };

    /// <param name="warmUp">EngineOptions.WarmUp: for a server; a command that runs the model once would only run it twice.</param>
    /// <param name="batchOption">The option that set <paramref name="maxBatch"/>, named when the model cannot run batches that large.</param>
    public ToMeEngine Load(ParseResult parse, int maxBatch = 32, bool warmUp = false, string batchOption = "--batch")
    {
        var options = new EngineOptions
        {
            Backend = ParseBackend(parse.GetValue(Backend)),
            Precision = ModelOptions.ParsePrecision(parse, Precision),
            Schedule = ParseSchedules(parse)[0],
            Merge = Strategy.Parse(parse),
            ProportionalAttention = !parse.GetValue(NoPropAttn),
            Threads = parse.GetValue(Threads),
            MaxBatchSize = maxBatch,
            Decode = BridgeDecoding.Options with { MaxPixels = parse.GetValue(MaxPixels) },
            WarmUp = warmUp,
        };
        var path = ModelOptions.ResolveModel(parse.GetValue(Model));
        try
        {
            return ToMeEngine.Load(path, options);
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName == nameof(EngineOptions.MaxBatchSize))
        {
            // How large a batch fits depends on the model, so only loading can tell.
            throw new ArgumentException($"{batchOption} {maxBatch}: {ErrorText.Plain(e)}", e);
        }
    }
}

/// <summary>Where the commands that take --model look for a model when none is named.</summary>
internal static class DefaultModel
{
    public static string Find()
    {
        var places = new List<string>();
        if (Environment.GetEnvironmentVariable("TOME_MODELS") is { Length: > 0 } env)
            places.Add(env);
        var checkout = new[] { Environment.CurrentDirectory, AppContext.BaseDirectory }
            .SelectMany(start => Ancestors(new DirectoryInfo(start)))
            .FirstOrDefault(dir => File.Exists(Path.Combine(dir.FullName, "ToMeEngine.sln")));
        // In a checkout, models/ at its root; elsewhere (the installed tool), models/ in the working directory.
        places.Add(Path.Combine(checkout?.FullName ?? Environment.CurrentDirectory, "models"));
        foreach (var place in places.Distinct())
        {
            if (!Directory.Exists(place))
                continue;
            if (IsModel(place))
                return place;
            var found = Directory.GetDirectories(place).Order(StringComparer.Ordinal).FirstOrDefault(IsModel);
            if (found is not null)
                return found;
        }
        throw new FileNotFoundException(
            $"no --model given and no model found in {string.Join(" or ", places.Distinct())}. Either put a model folder " +
            "(config.json + model.safetensors, the files of huggingface.co/timm/NAME) into models/NAME/ (or $TOME_MODELS), " +
            "or pass --model timm/NAME (e.g. timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k) to download it into the Hugging Face cache");
    }

    private static IEnumerable<DirectoryInfo> Ancestors(DirectoryInfo? dir)
    {
        for (; dir is not null; dir = dir.Parent)
            yield return dir;
    }

    private static bool IsModel(string dir) => File.Exists(Path.Combine(dir, "config.json")) && File.Exists(Path.Combine(dir, "model.safetensors"));
}
