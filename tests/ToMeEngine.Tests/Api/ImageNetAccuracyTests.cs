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
    public void VitTinyMatchesTimmAccuracyAndPerImageTop1(int r, double top1, double top5, double tolerance) =>
        Check(r, Precision.Float32, top1, top5, tolerance, minAgreement: 0.995);

    /// <summary>
    /// int8 Linear layers: top-1 and top-5 within 1 point of timm's float32 accuracy. Agreement with float32's top-1 is
    /// lower at r = 13 than at r = 0 (measured 94.8% and 98.8%): merge decisions are discrete, and any perturbation moves
    /// those near a tie (float32 with input noise of a quarter of a pixel level agrees on 97.8% at r = 13).
    /// </summary>
    [Theory]
    [InlineData(0, 82.6, 95.6, 0.97)]
    [InlineData(13, 81.2, 94.2, 0.92)]
    public void VitTinyInt8StaysWithinAPointOfFloat32(int r, double top1, double top5, double minAgreement) =>
        Check(r, Precision.Int8, top1, top5, tolerance: 1.0, minAgreement);

    private static void Check(int r, Precision precision, double top1, double top5, double tolerance, double minAgreement)
    {
        var model = SharedData.Require("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        var samples = SharedData.Require("imagenet-samples");
        var reference = File.ReadAllLines(SharedData.Require("reference/top5.csv"));
        var header = reference[0].Split(',').ToList();
        int refColumn = header.IndexOf($"vit_r{r}_top1");

        using var engine = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu, Precision = precision, Schedule = MergeSchedule.Constant(r) });
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
        Assert.True(agree / n >= minAgreement, $"{precision.Name()}: top-1 agrees with the reference on {agree}/{rows.Length}: {string.Join("; ", disagreements.Take(5))}");
        Assert.True(Math.Abs(100 * hits1 / n - top1) <= tolerance + 1e-9, $"{precision.Name()} r = {r}: top-1 {100 * hits1 / n:F1}, reference {top1}");
        Assert.True(Math.Abs(100 * hits5 / n - top5) <= tolerance + 1e-9, $"{precision.Name()} r = {r}: top-5 {100 * hits5 / n:F1}, reference {top5}");
    }
}
