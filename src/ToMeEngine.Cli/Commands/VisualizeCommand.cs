using System.CommandLine;
using ToMe.Imaging;

namespace ToMe.Cli.Commands;

/// <summary><c>tome visualize IMAGE -o out.png</c>: ToMe's picture of which patches merged together.</summary>
internal static class VisualizeCommand
{
    public static Command Create()
    {
        var image = new Argument<string>("image") { Description = $"image file: {BridgeDecoding.Formats}" };
        var output = new Option<string>("--output", "-o") { Description = "PNG to write", Required = true }.OutputFile();
        var engineOptions = new EngineCliOptions();
        var command = new Command("visualize", "draw the merged token groups of an image (each group in its mean colour, outlined) as a PNG")
        {
            image, output,
        };
        engineOptions.AddTo(command);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            using var engine = engineOptions.Load(parse, maxBatch: 1);
            var decoded = ImageDecoder.Decode(parse.GetValue(image)!, engine.Options.Decode);
            var features = engine.ExtractFeatures(decoded);
            var picture = engine.VisualizeMerging(decoded, features);
            PngEncoder.Save(picture, parse.GetValue(output)!);
            Console.WriteLine($"{engine.Config.Architecture}, merge {engine.Options.Merge}, r = {engine.Options.Schedule}: " +
                $"{engine.Config.NumPatches} patches -> {features.Sizes.Count(s => s > 0)} tokens; wrote {parse.GetValue(output)}");
            return 0;
        }));
        return command;
    }
}
