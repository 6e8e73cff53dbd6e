using System.CommandLine;
using ToMe.Merging;
using ToMe.Weights.Hub;

namespace ToMe.Cli.Commands;

/// <summary>Options several commands share, declared once.</summary>
internal static class ModelOptions
{
    public static Option<string> Model(bool required = true) => new("--model", "-m")
    {
        Description = "model folder in timm's hub layout (config.json + model.safetensors), a .safetensors file with __metadata__.config, " +
                      "or a hub name (timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k, or the bare timm name) fetched into the Hugging Face cache",
        Required = required,
    };

    public static Option<string> Schedule() => new("--r")
    {
        Description = "merge schedule: r (e.g. 13), r,inflect (e.g. 16,-0.5) or a per-layer list (e.g. [8,8,4,0])",
        DefaultValueFactory = _ => "0",
    };

    /// <summary>
    /// The local path of the --model value: hub names are fetched (configured by HF_* variables), with a progress
    /// line on stderr when it is a terminal.
    /// </summary>
    public static string ResolveModel(string model) =>
        ModelSource.Resolve(model, progress: Console.IsErrorRedirected ? null : new ConsoleDownloadProgress());

    public static MergeSchedule ParseSchedule(string text) => MergeSchedule.Parse(text);
}
