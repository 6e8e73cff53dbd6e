using System.Text.Json;
using ToMe.Tests.Support;

namespace ToMe.Tests.Bridges;

/// <summary>`tome classify` reads GIF, WebP and TIFF through the bridges and says which library decoded them.</summary>
public sealed class CliBridgeTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-cli-bridges-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void GifWebPAndTiffClassifyThroughTheCli()
    {
        var model = Fixtures.ModelPath("vit_p14_d3");
        var files = new[]
        {
            BridgeImages.Write(dir, "picture.gif", BridgeImages.Gif()),
            BridgeImages.Write(dir, "picture.webp", BridgeImages.WebP()),
            BridgeImages.Write(dir, "picture.tiff", BridgeImages.Tiff()),
        };
        var (code, stdout, stderr) = TomeProcess.Run(["classify", .. files, "--model", model, "--backend", "cpu", "--r", "13", "--top", "3", "--json"]);
        Assert.True(code == 0, stderr);

        using var engine = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu, Schedule = ToMe.Merging.MergeSchedule.Constant(13) });
        var expected = engine.Classify(BridgeImages.Source, 3);
        using var json = JsonDocument.Parse(stdout);
        var results = json.RootElement.GetProperty("results");
        Assert.Equal(files.Length, results.GetArrayLength());
        foreach (var result in results.EnumerateArray())
        {
            var predictions = result.GetProperty("predictions").EnumerateArray().ToList();
            Assert.Equal(expected.Select(p => p.ClassIndex), predictions.Select(p => p.GetProperty("index").GetInt32()));
            for (int i = 0; i < expected.Count; i++)
                Assert.Equal(expected[i].Probability, predictions[i].GetProperty("probability").GetSingle(), 1e-6f);
        }
        Assert.Contains("note: GIF decoded by SkiaSharp; only the built-in decoders (JPEG (Huffman-coded), PNG, BMP, PPM/PGM) give PIL's exact pixels", stderr);
        Assert.Contains("note: WebP decoded by SkiaSharp", stderr);
        Assert.Contains("note: TIFF decoded by ImageSharp", stderr);
        Assert.Equal(3, stderr.Split('\n').Count(l => l.StartsWith("note: ", StringComparison.Ordinal)));
    }

    [Fact]
    public void AFormatNoBridgeReadsIsNamed()
    {
        var heif = BridgeImages.Write(dir, "photo.heic", [0, 0, 0, 0x18, .. "ftypheic"u8, 0, 0, 0, 0, .. "mif1heic"u8]);
        var (code, _, stderr) = TomeProcess.Run("classify", heif, "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu");
        Assert.Equal(1, code);
        Assert.Contains($"error: {heif}: HEIF image: not read by the built-in decoders", stderr);
        Assert.Contains("nor by SkiaSharp, ImageSharp here; convert it", stderr);
    }
}
