using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cli;

/// <summary>
/// Output paths are checked before the work that fills them, in the user's words (a directory, a missing folder), and a
/// failed write leaves no temporary file behind.
/// </summary>
public sealed class OutputPathTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-cli-output-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Model => Fixtures.ModelPath("vit_p14_d3");

    private static string Picture => RepoData.Path(Path.Combine("images", "png_rgb.png"));

    private string[] Command(string name, string output) => name switch
    {
        "eval" => ["eval", "--model", Model, "--images", Labelled(), "--backend", "cpu", "-o", output],
        "visualize" => ["visualize", Picture, "--model", Model, "--backend", "cpu", "-o", output],
        _ => ["forward", "--model", Model, "--input", Fixtures.GoldenPath("vit_p14_d3"), "-o", output],
    };

    private string Labelled()
    {
        var images = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName;
        File.Copy(Picture, Path.Combine(images, "a.png"), overwrite: true);
        File.WriteAllLines(Path.Combine(images, "labels.csv"), ["filename,class_index", "a.png,3"]);
        return images;
    }

    [Theory]
    [InlineData("eval")]
    [InlineData("visualize")]
    [InlineData("forward")]
    public void ADirectoryAsOutputIsRefusedBeforeTheWork(string command)
    {
        var output = Directory.CreateDirectory(Path.Combine(dir, "outdir")).FullName;
        var (code, stdout, stderr) = TomeProcess.Run(Command(command, output));
        Assert.Equal(2, code);
        Assert.Equal("", stdout); // nothing ran
        Assert.Equal($"error: --output {output}: is a directory; give a file path", stderr.TrimEnd());
        Assert.Equal([output], Directory.GetFileSystemEntries(dir).Where(p => p.Contains("outdir")).ToArray()); // no outdir.tmp-*
    }

    [Theory]
    [InlineData("eval")]
    [InlineData("visualize")]
    [InlineData("forward")]
    public void AnOutputInAMissingFolderIsRefusedBeforeTheWork(string command)
    {
        var folder = Path.Combine(dir, "nonexist");
        var output = Path.Combine(folder, "x.out");
        var (code, stdout, stderr) = TomeProcess.Run(Command(command, output));
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: --output {output}: folder {folder} does not exist", stderr.TrimEnd());
    }

    [Fact]
    public void AFailedSafeTensorsWriteRemovesItsTemporaryFileAndNamesThePath()
    {
        var writer = new SafeTensorsWriter().Add("x", [1], new float[] { 1 });
        var target = Directory.CreateDirectory(Path.Combine(dir, "target")).FullName;
        var error = Assert.ThrowsAny<IOException>(() => writer.Save(target));
        Assert.DoesNotContain(".tmp-", error.Message);
        Assert.Equal([target], Directory.GetFileSystemEntries(dir));

        var missing = Path.Combine(dir, "nonexist", "x.safetensors");
        error = Assert.ThrowsAny<IOException>(() => writer.Save(missing));
        Assert.Contains(missing, error.Message);
        Assert.DoesNotContain(".tmp-", error.Message);
    }
}
