using System.Text.Json;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

public sealed class ClassifyEvalCommandTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-cli-eval-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Model => Fixtures.ModelPath("vit_p14_d3");

    private static string Picture(string name) => RepoData.Path(Path.Combine("images", name));

    [Fact]
    public void ClassifyPrintsJsonAndReportsBadFilesWithoutStopping()
    {
        var bad = Path.Combine(dir, "broken.png");
        File.WriteAllBytes(bad, [137, 80, 78, 71, 13, 10, 26, 10, 0, 0]);
        var (code, stdout, stderr) = TomeProcess.Run("classify", Picture("png_rgb.png"), bad, Picture("bmp_rgb.bmp"),
            "--model", Model, "--backend", "cpu", "--top", "2", "--json");
        Assert.Equal(1, code); // one image failed
        Assert.Contains("broken.png", stderr);
        using var json = JsonDocument.Parse(stdout);
        var results = json.RootElement.GetProperty("results");
        Assert.Equal(3, results.GetArrayLength());
        Assert.Equal(2, results[0].GetProperty("predictions").GetArrayLength());
        Assert.True(results[1].TryGetProperty("error", out _));
        Assert.Equal(2, results[2].GetProperty("predictions").GetArrayLength());
    }

    [Fact]
    public void MaxPixelsRefusesLargerImagesBeforeDecodingThem()
    {
        // png_rgb.png is larger than 32 x 32 pixels; bmp_rgb.bmp too, but the limit applies to each file alone.
        var (code, stdout, stderr) = TomeProcess.Run("classify", Picture("png_rgb.png"), "--model", Model, "--backend", "cpu",
            "--max-pixels", "1024");
        Assert.Equal(1, code);
        Assert.Contains("png_rgb.png", stderr);
        Assert.Contains("exceeds the limit of 1024", stderr);
        Assert.DoesNotContain("%", stdout);
        var (ok, _, okErr) = TomeProcess.Run("classify", Picture("png_rgb.png"), "--model", Model, "--backend", "cpu");
        Assert.True(ok == 0, okErr);
    }

    [Fact]
    public void EvalScoresAFolderAndSkipsUnreadableFiles()
    {
        // Labels: each picture's own top-1 under the engine, so the expected accuracy is 100%, and one broken file.
        var names = new[] { "baseline_420_q90.jpg", "png_rgb.png", "gray_q90.jpg" };
        using var engine = ToMeEngine.Load(Model, new EngineOptions { Backend = BackendKind.Cpu });
        var lines = new List<string> { "filename,class_index" };
        foreach (var name in names)
        {
            File.Copy(Picture(name), Path.Combine(dir, name));
            lines.Add($"{name},{engine.Classify(Picture(name), 1)[0].ClassIndex}");
        }
        File.WriteAllBytes(Path.Combine(dir, "zero.jpg"), []);
        lines.Add("zero.jpg,3");
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), lines);
        var preds = Path.Combine(dir, "preds.csv");

        var (code, stdout, stderr) = TomeProcess.Run("eval", "--model", Model, "--images", dir, "--backend", "cpu", "--batch", "2", "--output", preds);
        Assert.True(code == 0, stderr);
        Assert.Contains("top-1 100.00%", stdout);
        Assert.Contains("over 3 images (1 unreadable, skipped)", stdout);
        Assert.Contains("zero.jpg", stderr);
        var rows = File.ReadAllLines(preds);
        Assert.Equal("filename,true_index,pred1,pred2,pred3,pred4,pred5,prob1", rows[0]);
        Assert.Equal(4, rows.Length);
    }

    [Fact]
    public void VisualizeWritesAPng()
    {
        var output = Path.Combine(dir, "v.png");
        var (code, stdout, stderr) = TomeProcess.Run("visualize", Picture("png_rgb.png"), "--model", Model, "--backend", "cpu", "--r", "60", "-o", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("256 patches -> 77 tokens", stdout);
        Assert.Equal((224, 224), (ToMe.Imaging.ImageDecoder.Decode(output).Width, ToMe.Imaging.ImageDecoder.Decode(output).Height));
    }
}
