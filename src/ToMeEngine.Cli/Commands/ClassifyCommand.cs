using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace ToMe.Cli.Commands;

/// <summary><c>tome classify IMAGE...</c>: the top classes of each image.</summary>
internal static class ClassifyCommand
{
    public static Command Create()
    {
        var images = new Argument<string[]>("images") { Description = $"image files: {BridgeDecoding.Formats}", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top") { Description = "how many classes to print per image", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var engineOptions = new EngineCliOptions();
        var command = new Command("classify", "classify images with a timm ViT/DeiT") { images, top, json };
        engineOptions.AddTo(command);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            int k = parse.GetValue(top);
            if (k < 1)
                throw new ArgumentException("--top must be at least 1");
            using var engine = engineOptions.Load(parse);
            int failures = 0;
            var records = new List<object>();
            var inv = CultureInfo.InvariantCulture;
            foreach (var path in parse.GetValue(images)!)
            {
                IReadOnlyList<Prediction> predictions;
                try
                {
                    predictions = engine.Classify(path, k);
                }
                catch (Exception e) when (e is Imaging.InvalidImageException or IOException or UnauthorizedAccessException)
                {
                    failures++;
                    Console.Error.WriteLine($"error: {e.Message}");
                    records.Add(new { file = path, error = e.Message });
                    continue;
                }
                if (parse.GetValue(json))
                {
                    records.Add(new { file = path, predictions = predictions.Select(p => new { index = p.ClassIndex, label = p.Label, probability = p.Probability }) });
                    continue;
                }
                Console.WriteLine(path);
                foreach (var p in predictions)
                    Console.WriteLine(string.Create(inv, $"  {p.Probability,7:P2}  {p.ClassIndex,5}  {p.Label}"));
            }
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new { model = engine.Config.Architecture, backend = engine.BackendName, precision = engine.Precision.Name(), results = records },
                    new JsonSerializerOptions { WriteIndented = true }));
            return failures == 0 ? 0 : 1;
        }));
        return command;
    }
}
