using SixLabors.ImageSharp.PixelFormats;
using SkiaSharp;
using ToMe;
using ToMe.ImageSharp;
using ToMe.Imaging;
using ToMe.Merging;
using ToMe.SkiaSharp;

using var engine = ToMeEngine.Load("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k",
    new EngineOptions { Schedule = MergeSchedule.Constant(13) });

// One image: a path, encoded bytes (byte[] or ReadOnlyMemory<byte>), a Stream, or decoded pixels (RgbImage).
foreach (var p in engine.Classify("cat.jpg", topK: 5))
    Console.WriteLine($"{p.Label}: {p.Probability:P1}");

// Any sequence of paths or images, in batched forward passes.
var batch = engine.ClassifyBatch(new[] { "a.jpg", "b.png" });
Console.WriteLine($"a.jpg: {batch[0][0].Label}, b.png: {batch[1][0].Label}");

// Asynchronously, with cancellation; a folder streams back in input order while decoding runs in parallel.
var top = await engine.ClassifyAsync("cat.jpg", topK: 1, CancellationToken.None);
await foreach (var r in engine.ClassifyManyAsync(Directory.EnumerateFiles("photos"), topK: 1))
    Console.WriteLine(r.Succeeded ? $"{r.Input}: {r.Predictions[0].Label}" : $"{r.Input}: {r.Error.Message}");

// Dense features: the merged tokens and the unmerged [H_p, W_p, C] patch grid.
RgbImage image = ImageDecoder.Decode("cat.jpg");
DenseFeatures features = engine.ExtractFeatures(image);
Console.WriteLine($"{features.FinalTokens} tokens; patch grid {features.GridSize}x{features.GridSize}x{features.Channels}");

// Images from ImageSharp and SkiaSharp (packages ToMeEngine.ImageSharp and ToMeEngine.SkiaSharp).
using (var picture = SixLabors.ImageSharp.Image.Load<Rgb24>("cat.jpg"))
    Console.WriteLine($"ImageSharp: {engine.Classify(picture, topK: 1)[0].Label}, async: {top[0].Label}");
using (var bitmap = SKBitmap.Decode("cat.jpg"))
    Console.WriteLine($"SkiaSharp: {engine.Classify(bitmap, topK: 1)[0].Label}");
