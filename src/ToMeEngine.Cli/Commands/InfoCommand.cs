using System.CommandLine;
using System.Globalization;
using ToMe.Model;

namespace ToMe.Cli.Commands;

/// <summary><c>tome info</c>: architecture, parameters, tokens per layer and cost at a merge schedule.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model(required: false);
        var schedule = ModelOptions.Schedule();
        var list = new Option<bool>("--list") { Description = "list the timm architecture names the engine knows" };
        var command = new Command("info", "print a model's architecture, parameter count, tokens per layer and GFLOPs per image")
        {
            model, schedule, list,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(list))
            {
                foreach (var name in ArchitectureTable.KnownNames)
                    Console.WriteLine(name);
                return 0;
            }
            var path = parse.GetValue(model) ?? throw new ArgumentException("--model is required (or --list)");
            var config = ModelLoader.ReadConfig(ModelOptions.ResolveModel(path));
            var sched = ModelOptions.ParseSchedule(parse.GetValue(schedule)!);
            var (tokens, rs, final) = sched.Plan(config.Depth, config.Tokens, config.PrefixTokens);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"architecture     {config.Architecture}");
            Console.WriteLine($"input            {config.ImageSize}x{config.ImageSize}, patch {config.PatchSize}, {config.NumPatches} patches + {config.PrefixTokens} prefix token(s)");
            Console.WriteLine($"width            {config.EmbedDim} channels, {config.NumHeads} heads of {config.HeadDim}, MLP {config.MlpHidden}, {config.Depth} blocks");
            Console.WriteLine($"head             {config.NumClasses} classes, pool {config.GlobalPool.ToString().ToLowerInvariant()}{(config.Distilled ? ", distilled (two heads averaged)" : "")}");
            Console.WriteLine(string.Create(inv, $"parameters       {config.ParameterCount:N0} ({config.ParameterCount / 1e6:F2} M)"));
            Console.WriteLine(string.Create(inv, $"preprocess       resize {config.Preprocess.ResizeShorterSide} ({config.Preprocess.Interpolation}), crop {config.ImageSize}, mean [{string.Join(", ", config.Preprocess.Mean)}], std [{string.Join(", ", config.Preprocess.Std)}]"));
            Console.WriteLine($"schedule         r = {sched}: per layer [{string.Join(", ", rs)}]");
            Console.WriteLine($"tokens per layer {string.Join(" ", tokens)} -> {final}");
            double gflops = FlopCounter.MultiplyAdds(config, sched) / 1e9;
            double baseline = FlopCounter.MultiplyAdds(config, Merging.MergeSchedule.None) / 1e9;
            Console.WriteLine(string.Create(inv, $"GFLOPs per image {gflops:F3} (multiply-adds, as fvcore counts; r = 0: {baseline:F3}, {baseline / gflops:F2}x fewer)"));
            return 0;
        }));
        return command;
    }
}
