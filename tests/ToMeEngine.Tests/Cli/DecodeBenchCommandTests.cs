using System.Text.Json;
using ToMe.Tests.Bridges;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

/// <summary>
/// <c>tome bench decode</c> and <c>tome bench --images</c> over a folder with unreadable files: they use the decoders classify
/// and eval use, name and skip the files none reads, and report how many were measured and how many skipped.
/// </summary>
public sealed class DecodeBenchCommandTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-decode-bench-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string MixedFolder()
    {
        File.Copy(RepoData.Path("images/png_rgb.png"), Path.Combine(dir, "a.png"));
        BridgeImages.Write(dir, "b.gif", BridgeImages.Gif());     // no built-in decoder: SkiaSharp or ImageSharp
        File.WriteAllText(Path.Combine(dir, "c.jpg"), "hello world");
        File.WriteAllText(Path.Combine(dir, "d.jpg"), "not a picture either");
        return dir;
    }

    [Fact]
    public void DecodeBenchSkipsAndNamesUnreadableFiles()
    {
        var folder = MixedFolder();
        var (code, stdout, stderr) = TomeProcess.Run("bench", "decode", "--images", folder, "--rounds", "1", "--json");
        Assert.True(code == 0, stderr);
        Assert.Contains($"skipped {Path.Combine(folder, "c.jpg")}: unknown image format", stderr);
        Assert.Contains($"skipped {Path.Combine(folder, "d.jpg")}: ", stderr);
        Assert.DoesNotContain("b.gif", stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(2, json.RootElement.GetProperty("images").GetInt32());
        Assert.Equal(2, json.RootElement.GetProperty("skipped").GetInt32());

        (code, stdout, stderr) = TomeProcess.Run("bench", "decode", "--images", folder, "--rounds", "1", "--decode-only");
        Assert.True(code == 0, stderr);
        Assert.Contains("2 files (2 unreadable, skipped)", stdout);
    }

    [Fact]
    public void DecodeBenchWithNoReadableFileSaysSo()
    {
        File.WriteAllText(Path.Combine(dir, "c.jpg"), "hello world");
        var (code, _, stderr) = TomeProcess.Run("bench", "decode", "--images", dir, "--rounds", "1");
        Assert.NotEqual(0, code);
        Assert.Contains($"--images {dir}: none of the 1 files decoded", stderr);
    }

    [Fact]
    public void EndToEndBenchCountsDecodedAndSkippedFiles()
    {
        var folder = MixedFolder();
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu", "--images", folder,
            "--batch", "2", "--r", "0", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var row = Assert.Single(json.RootElement.GetProperty("results").EnumerateArray());
        Assert.Equal(2, row.GetProperty("images").GetInt32());
        Assert.Equal(2, row.GetProperty("skipped").GetInt32());

        (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu", "--images", folder,
            "--batch", "2", "--r", "0");
        Assert.True(code == 0, stderr);
        Assert.Contains("2 of 4 files (2 unreadable, skipped)", stdout);
    }
}
