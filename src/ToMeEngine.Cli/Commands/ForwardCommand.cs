using System.CommandLine;
using ToMe.Backends;
using ToMe.Model;
using ToMe.Weights;

namespace ToMe.Cli.Commands;

/// <summary><c>tome forward</c>: a preprocessed batch in, logits and merge bookkeeping out, as safetensors.</summary>
internal static class ForwardCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var input = new Option<string>("--input", "-i") { Description = "safetensors with tensor 'input' F32 [B,3,H,W] (preprocessed)", Required = true }.InputFile();
        var output = new Option<string>("--output", "-o") { Description = "safetensors to write: logits, tokens_per_layer, size, group (-1: dropped)", Required = true }.OutputFile();
        var schedule = ModelOptions.Schedule();
        var strategy = new StrategyOptions();
        var noPropAttn = new Option<bool>("--no-prop-attn") { Description = "turn proportional attention off" };
        var backend = new Option<string>("--backend") { Description = "cpu, cuda, or auto (cuda when a device is usable)", DefaultValueFactory = _ => "cpu" };
        var threads = ModelOptions.Threads();
        var merges = new Option<bool>("--merges")
        {
            Description = "also write each bipartite merge decision: layerL.src_idx and layerL.dst_idx I32 [B, r] (the golden fixtures' names)",
        };
        var precision = ModelOptions.Precision();
        var command = new Command("forward", "run the model on a preprocessed batch and write logits, tokens per layer, sizes and groups")
        {
            model, input, output, schedule, noPropAttn, backend, precision, threads, merges,
        };
        foreach (var option in strategy.All)
            command.Options.Add(option);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var backendName = parse.GetValue(backend)!;
            if (!BackendFactory.Names.Contains(backendName))
                throw new ArgumentException($"--backend '{backendName}' is not available (expected {string.Join(", ", BackendFactory.Names)})");
            var requested = ModelOptions.ParsePrecision(parse, precision);
            var options = new ForwardOptions
            {
                Schedule = Merging.MergeSchedule.Parse(parse.GetValue(schedule)!),
                Strategy = strategy.Parse(parse),
                ProportionalAttention = !parse.GetValue(noPropAttn),
            };
            var weights = ModelLoader.Load(ModelOptions.ResolveModel(parse.GetValue(model)));
            var config = weights.Config;
            float[] images;
            int batch;
            var inputPath = parse.GetValue(input)!;
            using (var file = SafeTensorsFile.Open(inputPath))
            {
                var info = file.Get("input");
                int s = config.ImageSize;
                if (info.Shape.Count != 4 || info.Shape[0] < 1 || info.Shape[1] != 3 || info.Shape[2] != s || info.Shape[3] != s)
                    throw new InvalidModelException($"{inputPath}: tensor 'input' has shape {info.ShapeText}, expected [B, 3, {s}, {s}] for {config.Architecture}");
                batch = info.Shape[0];
                images = file.ReadFloat32("input");
            }
            using var engine = BackendFactory.Create(backendName, parse.GetValue(threads), precision: requested);
            using var pass = new ForwardPass(engine, weights, requested);
            var decisions = new SortedDictionary<int, (int[] Src, int[] Dst)>();
            var trace = parse.GetValue(merges) ? new ForwardTrace { OnMerge = (l, src, dst) => decisions[l] = (src, dst) } : null;
            var result = pass.Run(images, batch, options, trace);
            var writer = new SafeTensorsWriter();
            foreach (var (layer, (src, dst)) in decisions)
            {
                writer.Add($"layer{layer}.src_idx", [batch, src.Length / batch], src);
                writer.Add($"layer{layer}.dst_idx", [batch, dst.Length / batch], dst);
            }
            writer
                .AddMetadata("merge", options.Strategy.ToString())
                .AddMetadata("schedule", options.Schedule.ToString())
                .AddMetadata("prop_attn", options.ProportionalAttention ? "true" : "false")
                .AddMetadata("precision", pass.Precision.Name())
                .Add("logits", [batch, config.NumClasses], result.Logits)
                .Add("tokens_per_layer", [config.Depth], result.TokensPerLayer)
                .Add("size", [batch, result.FinalTokens], result.Size)
                .Add("group", [batch, config.Tokens], result.Groups)
                .Save(parse.GetValue(output)!);
            // ToMato pads images to the batch's largest count; the real counts are the slots with a size.
            var perImage = Enumerable.Range(0, batch).Select(b => result.Size.AsSpan(b * result.FinalTokens, result.FinalTokens).ToArray().Count(x => x > 0)).ToArray();
            var padded = perImage.Any(n => n != result.FinalTokens) ? $" (per image {string.Join(" ", perImage)})" : "";
            Console.WriteLine($"{config.Architecture} ({engine.Name} {pass.Precision.Name()}): merge {options.Strategy}, batch {batch}, tokens {string.Join(" ", result.TokensPerLayer)} -> {result.FinalTokens}{padded}; wrote {parse.GetValue(output)}");
            return 0;
        }));
        return command;
    }
}
