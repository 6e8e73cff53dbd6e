using System.CommandLine;
using System.Globalization;
using ToMe.Merging;
using ToMe.Weights.Hub;

namespace ToMe.Cli.Commands;

/// <summary>Options several commands share, declared once.</summary>
internal static class ModelOptions
{
    public static Option<string> Model(bool required = true, string defaultNote = "") => new("--model", "-m")
    {
        Description = "model folder in timm's hub layout (config.json + model.safetensors), a .safetensors file with __metadata__.config, " +
                      "or a hub name (timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k, or the bare timm name) fetched into the Hugging Face cache" + defaultNote,
        Required = required,
    };

    public static Option<string> Schedule() => new("--r")
    {
        Description = "merge schedule: r (e.g. 13), r,inflect (e.g. 16,-0.5) or a per-layer list (e.g. [8,8,4,0])",
        DefaultValueFactory = _ => "0",
    };

    public static Option<string[]> Schedules() => new("--r")
    {
        Description = "merge schedule: r (e.g. 13), r,inflect (e.g. 16,-0.5) or a per-layer list (e.g. [8,8,4,0]); repeat --r to compare "
                      + "schedules (--r 0 --r 8 --r 13): accuracy and forward speed of each on the same images, against the first",
        DefaultValueFactory = _ => ["0"],
        AllowMultipleArgumentsPerToken = false,
    };

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
    /// The local path of the --model value: hub names are fetched (configured by HF_* variables), with a progress
    /// line on stderr when it is a terminal.
    /// </summary>
    public static string ResolveModel(string model) =>
        ModelSource.Resolve(model, progress: Console.IsErrorRedirected ? null : new ConsoleDownloadProgress());
}

/// <summary>The merge strategy options: <c>--merge</c> and the parameters its variants take.</summary>
internal sealed class StrategyOptions
{
    public Option<string> Merge { get; } = new("--merge")
    {
        Description = "merging algorithm: tome (schedule --r), kth (--k), random (--r, --seed), tomato (--threshold), cis (--r), none",
        DefaultValueFactory = _ => "tome",
    };

    // Read as text and parsed here, so a malformed number is a one-line error like every other bad argument.
    public Option<string?> K { get; } = new("--k") { Description = "kth: group size k >= 2 (the last token of every k merges in the others)" };

    public Option<string?> Seed { get; } = new("--seed") { Description = "random: seed of the per-image random choice of sources (an integer)" };

    public Option<string?> Threshold { get; } = new("--threshold") { Description = "tomato: join neighbour patches whose cosine similarity exceeds this" };

    public IEnumerable<Option> All => [Merge, K, Seed, Threshold];

    public MergeStrategy Parse(ParseResult parse) => MergeStrategy.Parse(parse.GetValue(Merge)!,
        Number(parse.GetValue(K), "--k", s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture)),
        Number(parse.GetValue(Seed), "--seed", s => long.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture)),
        Number(parse.GetValue(Threshold), "--threshold", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture)));

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
