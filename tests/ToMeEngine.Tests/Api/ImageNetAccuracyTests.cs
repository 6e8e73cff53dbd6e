using System.Globalization;
using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Api;

/// <summary>
/// The whole image → label path on 500 ImageNet photos against timm + official ToMe: accuracy and per-image agreement
/// with the reference's top-1 (reference/top5.csv).
/// </summary>
public class ImageNetAccuracyTests
{
    [Theory]
    [InlineData(0, 82.6, 95.6, 0.2)]
    [InlineData(13, 81.2, 94.2, 0.4)]
    public void VitTinyMatchesTimmAccuracyAndPerImageTop1(int r, double top1, double top5, double tolerance)
    {
        var model = SharedData.Require("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        var samples = SharedData.Require("imagenet-samples");
        var reference = File.ReadAllLines(SharedData.Require("reference/top5.csv"));
        var header = reference[0].Split(',').ToList();
        int refColumn = header.IndexOf($"vit_r{r}_top1");

        using var engine = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu, Schedule = MergeSchedule.Constant(r) });
        var rows = reference.Skip(1).Select(l => l.Split(',')).ToArray();
        int hits1 = 0, hits5 = 0, agree = 0;
        var disagreements = new List<string>();
        foreach (var chunk in rows.Chunk(32))
        {
            var images = new RgbImage[chunk.Length];
            Parallel.For(0, chunk.Length, i => images[i] = ImageDecoder.Decode(Path.Combine(samples, chunk[i][0])));
            var results = engine.ClassifyBatch(images, topK: 5);
            for (int i = 0; i < chunk.Length; i++)
            {
                int truth = int.Parse(chunk[i][1], CultureInfo.InvariantCulture);
                int expected = int.Parse(chunk[i][refColumn], CultureInfo.InvariantCulture);
                var best = results[i];
                hits1 += best[0].ClassIndex == truth ? 1 : 0;
                hits5 += best.Any(p => p.ClassIndex == truth) ? 1 : 0;
                if (best[0].ClassIndex == expected)
                    agree++;
                else
                    disagreements.Add($"{chunk[i][0]}: {best[0].ClassIndex} vs reference {expected}");
            }
        }
        double n = rows.Length;
        Assert.Equal(500, rows.Length);
        Assert.True(agree / n >= 0.995, $"top-1 agrees with the reference on {agree}/{rows.Length}: {string.Join("; ", disagreements.Take(5))}");
        Assert.InRange(100 * hits1 / n, top1 - tolerance, top1 + tolerance);
        Assert.InRange(100 * hits5 / n, top5 - tolerance, top5 + tolerance);
    }
}
