using System.CommandLine;
using System.Globalization;
using ToMe.Merging;
using ToMe.Weights.Hub;

namespace ToMe.Cli.Commands;

/// <summary>Options several commands share, declared once.</summary>
internal static class ModelOptions
{
    /// <summary>What every command that takes --model does without one (<see cref="DefaultModel"/>).</summary>
    public const string DefaultModelNote = "; default: the first model under models/ at the repository root or under $TOME_MODELS";

    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "model folder in timm's hub layout (config.json + model.safetensors), a .safetensors file with __metadata__.config, " +
                      "or a hub name (timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k, or the bare timm name) fetched into the Hugging Face cache" + DefaultModelNote,
    };

    public static Option<string> Schedule() => new Option<string>("--r")
    {
        Description = "merge schedule: r (e.g. 13), r,inflect (e.g. 16,-0.5) or a per-layer list (e.g. [8,8,4,0])",
        DefaultValueFactory = _ => "0",
    }.Check((string text) => MergeSchedule.Parse(text));

    public static Option<string[]> Schedules() => new Option<string[]>("--r")
    {
        Description = "merge schedule: r (e.g. 13), r,inflect (e.g. 16,-0.5) or a per-layer list (e.g. [8,8,4,0]); repeat --r to compare "
                      + "schedules (--r 0 --r 8 --r 13): accuracy and forward speed of each on the same images, against the first",
        DefaultValueFactory = _ => ["0"],
        AllowMultipleArgumentsPerToken = false,
    }.Check((string text) => MergeSchedule.Parse(text));

    public static Option<int> Threads() => new Option<int>("--threads")
    {
        Description = $"CPU threads (0 = all cores; at most {EngineOptions.MaxThreads}; more than the cores only adds switching)",
    }.Check((int n) => new EngineOptions { Threads = n }.Validate());

    public static Option<string> Precision() => new("--precision")
    {
        Description = "fp32 (the exact mode), int8 (CPU: int8 Linear layers), bf16, fp16, tf32 (CUDA), or auto (the backend's fast choice near fp32: "
                      + "bf16 on sm_80+, fp16 on sm_70/75, fp32 on the CPU)",
        DefaultValueFactory = _ => "fp32",
    };

    /// <summary>The --precision value; a name that is not a precision is a one-line error listing the names.</summary>
    public static Precision ParsePrecision(ParseResult parse, Option<string> option)
    {
        try
        {
            return PrecisionNames.Parse(parse.GetValue(option)!);
        }
        catch (FormatException e)
        {
            throw new FormatException($"--precision: {e.Message}");
        }
    }

    /// <summary>
    /// The local path of the --model value (without one, the default model): hub names are fetched (configured by HF_* variables), with a progress
    /// line on stderr when it is a terminal.
    /// </summary>
    public static string ResolveModel(string? model) =>
        ModelSource.Resolve(model ?? DefaultModel.Find(), progress: Console.IsErrorRedirected ? null : new ConsoleDownloadProgress());
}

/// <summary>The merge strategy options: <c>--merge</c> and the parameters its variants take.</summary>
/// <param name="many">--merge may be repeated (tome eval's comparison); each strategy then takes the parameters it uses.</param>
internal sealed class StrategyOptions(bool many = false)
{
    private const string MergeDescription = "merging algorithm: tome (schedule --r), kth (--k), random (--r, --seed), tomato (--threshold), cis (--r), none";

    private readonly Option<string>? merge = many ? null : new("--merge") { Description = MergeDescription, DefaultValueFactory = _ => "tome" };

    private readonly Option<string[]>? merges = many
        ? new("--merge") { Description = MergeDescription + "; repeat --merge to compare them", DefaultValueFactory = _ => ["tome"], AllowMultipleArgumentsPerToken = false }
        : null;

    // Read as text and parsed here, so a malformed number is a one-line error like every other bad argument.
    public Option<string?> K { get; } = new("--k") { Description = "kth: group size k >= 2 (the last token of every k merges in the others)" };

    public Option<string?> Seed { get; } = new("--seed") { Description = "random: seed of the per-image random choice of sources (an integer)" };

    public Option<string?> Threshold { get; } = new("--threshold") { Description = "tomato: join neighbour patches whose cosine similarity exceeds this" };

    public IEnumerable<Option> All => [(Option?)merge ?? merges!, K, Seed, Threshold];

    /// <summary>The strategy (the first one where --merge repeats).</summary>
    public MergeStrategy Parse(ParseResult parse) => ParseAll(parse)[0];

    /// <summary>
    /// Every --merge value as a strategy, in order. One strategy must use every parameter given; with several, each takes
    /// those it uses, and a parameter none of them uses is refused.
    /// </summary>
    public IReadOnlyList<MergeStrategy> ParseAll(ParseResult parse)
    {
        int? k = Number(parse.GetValue(K), "--k", s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture));
        long? seed = Number(parse.GetValue(Seed), "--seed", s => long.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture));
        double? threshold = Number(parse.GetValue(Threshold), "--threshold", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture));
        var names = merge is not null ? [parse.GetValue(merge)!] : parse.GetValue(merges!)!;
        if (names.Length == 1)
            return [MergeStrategy.Parse(names[0], k, seed, threshold)];
        var keys = names.Select(n => n.Trim().ToLowerInvariant()).ToArray();
        foreach (var (value, option, name) in new[] { (k is not null, "--k", "kth"), (seed is not null, "--seed", "random"), (threshold is not null, "--threshold", "tomato") })
            if (value && !keys.Contains(name))
                throw new FormatException($"{option} is given, but no --merge {name} takes it");
        return names.Select((n, i) => MergeStrategy.Parse(n, keys[i] == "kth" ? k : null, keys[i] == "random" ? seed : null,
            keys[i] == "tomato" ? threshold : null)).ToArray();
    }

    private static T? Number<T>(string? text, string option, Func<string, T> parse) where T : struct
    {
        if (text is null)
            return null;
        try
        {
            return parse(text.Trim());
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new FormatException($"{option} '{text}' is not a valid {(typeof(T) == typeof(double) ? "number" : "integer")}");
        }
    }
}
