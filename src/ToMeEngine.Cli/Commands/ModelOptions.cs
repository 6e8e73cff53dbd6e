using System.CommandLine;
using ToMe.Merging;

namespace ToMe.Cli.Commands;

/// <summary>Options several commands share, declared once.</summary>
internal static class ModelOptions
{
    public static Option<string> Model(bool required = true) => new("--model", "-m")
    {
        Description = "model folder in timm's hub layout (config.json + model.safetensors) or a .safetensors file with __metadata__.config",
        Required = required,
    };

    public static Option<string> Schedule() => new("--r")
    {
        Description = "merge schedule: r (e.g. 13), r,inflect (e.g. 16,-0.5) or a per-layer list (e.g. [8,8,4,0])",
        DefaultValueFactory = _ => "0",
    };

    public static MergeSchedule ParseSchedule(string text) => MergeSchedule.Parse(text);
}
