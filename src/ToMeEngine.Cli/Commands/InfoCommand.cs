using System.CommandLine;
using System.Globalization;
using ToMe.Backends.Cpu;
using ToMe.Model;

namespace ToMe.Cli.Commands;

/// <summary><c>tome info</c>: architecture, parameters, tokens per layer and cost at a merge schedule.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var schedule = ModelOptions.Schedule();
        var strategy = new StrategyOptions();
        var list = new Option<bool>("--list") { Description = "list the timm architecture names the engine knows" };
        var precision = ModelOptions.Precision();
        var command = new Command("info", "print a model's architecture, parameter count, tokens per layer and GFLOPs per image")
        {
            model, schedule, precision, list,
        };
        foreach (var option in strategy.All)
            command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(list))
            {
                foreach (var name in ArchitectureTable.KnownNames)
                    Console.WriteLine(name);
                return 0;
            }
            var config = ModelLoader.ReadConfig(ModelOptions.ResolveModel(parse.GetValue(model)));
            var sched = Merging.MergeSchedule.Parse(parse.GetValue(schedule)!);
            var merge = strategy.Parse(parse);
            var requested = ModelOptions.ParsePrecision(parse, precision);
            var plan = merge.Plan(sched, config.Depth, config.Tokens, config.PrefixTokens);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"architecture     {config.Architecture}");
            Console.WriteLine($"input            {config.ImageSize}x{config.ImageSize}, patch {config.PatchSize}, {config.NumPatches} patches + {config.PrefixTokens} prefix token(s)"
                + (config.RegTokens > 0 ? $" ({config.RegTokens} registers)" : "") + (config.NoEmbedClass ? ", positions for the patches only" : ""));
            Console.WriteLine($"width            {config.EmbedDim} channels, {config.NumHeads} heads of {config.HeadDim}, MLP {config.MlpHidden}, {config.Depth} blocks"
                + (config.LayerScale ? ", LayerScale" : ""));
            Console.WriteLine($"head             {config.NumClasses} classes, pool {config.GlobalPool.ToString().ToLowerInvariant()}{(config.FcNorm ? " + fc_norm" : "")}{(config.Distilled ? ", distilled (two heads averaged)" : "")}");
            Console.WriteLine(string.Create(inv, $"parameters       {config.ParameterCount:N0} ({config.ParameterCount / 1e6:F2} M)"));
            Console.WriteLine($"precision        {DescribePrecision(config, requested)}");
            Console.WriteLine(string.Create(inv, $"preprocess       resize {config.Preprocess.ScaleSize} ({config.Preprocess.Interpolation.ToString().ToLowerInvariant()}), {config.Preprocess.CropMode.ToString().ToLowerInvariant()} crop {config.ImageSize}, mean [{string.Join(", ", config.Preprocess.Mean)}], std [{string.Join(", ", config.Preprocess.Std)}]"));
            double baseline = FlopCounter.MultiplyAdds(config, Merging.MergeSchedule.None) / 1e9;
            if (plan is not var (tokens, merged, final))
            {
                Console.WriteLine($"merge            {merge}: once, after block 0's attention; the token count depends on the image");
                Console.WriteLine(string.Create(inv, $"GFLOPs per image at most {baseline:F3} (multiply-adds, as fvcore counts; r = 0)"));
                return 0;
            }
            Console.WriteLine($"merge            {merge}");
            var schedText = merge.UsesSchedule ? $"r = {sched}: " : "";
            Console.WriteLine($"schedule         {schedText}merged per layer [{string.Join(", ", merged)}]");
            Console.WriteLine($"tokens per layer {string.Join(" ", tokens)} -> {final}");
            double gflops = FlopCounter.MultiplyAdds(config, tokens, merged) / 1e9;
            Console.WriteLine(string.Create(inv, $"GFLOPs per image {gflops:F3} (multiply-adds, as fvcore counts; r = 0: {baseline:F3}, {baseline / gflops:F2}x fewer)"));
            return 0;
        }));
        return command;
    }

    private static string Int8Kernel() => Int8Gemm.BestPath switch
    {
        Int8Path.Avx512Vnni => "Avx512Vnni (generated at run time; TOME_INT8_JIT=0 turns it off)",
        var path => path.ToString(),
    };

    /// <summary>Which Linear layers a precision runs in which type, and what their weights weigh.</summary>
    private static string DescribePrecision(ModelConfig config, Precision precision)
    {
        var inv = CultureInfo.InvariantCulture;
        var layers = LinearLayer.All(config).ToList();
        double fp32 = layers.Sum(l => LinearLayer.WeightBytes(l.Out, l.In, Precision.Float32)) / 1e6;
        switch (precision)
        {
            case Precision.Int8:
                double int8 = layers.Sum(l => LinearLayer.WeightBytes(l.Out, l.In, l.Layer.DefaultPrecision(Precision.Int8))) / 1e6;
                return string.Create(inv, $"int8 (CPU): qkv, proj, fc1, fc2 of every block in int8, patch embedding and head in fp32; " +
                    $"Linear weights {int8:F1} MB (fp32: {fp32:F1} MB); integer kernel {Int8Kernel()}");
            case Precision.Float32:
                return string.Create(inv, $"fp32: Linear weights {fp32:F1} MB");
            case Precision.Auto:
                return "auto: fp32 on the CPU, the device's half type (bf16 on sm_80+, fp16 on sm_70/75) on CUDA";
            default:
                return $"{precision.Name()} (CUDA)";
        }
    }
}
