using System.Globalization;
using System.Text.Json;
using ToMe.Cli;
using ToMe.Cli.Commands;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

/// <summary>
/// What tome eval reads and writes: class folders named by WordNet id or class index, labels checked against the model's
/// classes, RFC 4180 CSV in and out, one JSON shape, and runs that score no image refused.
/// </summary>
public sealed class EvalInputTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-eval-input-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    // 1000 classes (the ImageNet-1k head shape), 4 blocks; and 100 classes, 3 blocks.
    private static string ImageNetShaped => Fixtures.ModelPath("deit_t4_distilled");
    private static string Small => Fixtures.ModelPath("vit_p14_d3");

    private static string Picture(string name) => RepoData.Path(Path.Combine("images", name));

    private string Folder(string name, params string[] files)
    {
        var folder = Directory.CreateDirectory(Path.Combine(dir, name)).FullName;
        foreach (var file in files)
            File.Copy(Picture("png_rgb.png"), Path.Combine(folder, file));
        return folder;
    }

    private static (int Code, string Stdout, string Stderr) Eval(string model, params string[] args) =>
        TomeProcess.Run(["eval", "--model", model, "--backend", "cpu", .. args]);

    [Fact]
    public void ClassFoldersNamedByWordNetIdOrIndexTakeThatClass()
    {
        // Tench and tiger are ImageNet-1k classes 0 and 292; the same file name in both folders stays two rows.
        Folder("n01440764", "x.png");
        Folder("n02129604", "x.png");
        Folder("7", "y.png");
        Folder(".ipynb_checkpoints", "z.png"); // a tool's hidden folder, not a class
        var preds = Path.Combine(dir, "preds.csv");
        var (code, _, stderr) = Eval(ImageNetShaped, "--images", dir, "-o", preds);
        Assert.True(code == 0, stderr);
        var rows = Csv.Read(File.ReadAllText(preds), preds).Skip(1).Select(r => (r.Fields[0], r.Fields[1])).ToArray();
        Assert.Equal(new[] { ("7/y.png", "7"), ("n01440764/x.png", "0"), ("n02129604/x.png", "292") }, rows);
    }

    [Fact]
    public void TheWordNetIdsAreTheImageNetOrderOfTheSamples()
    {
        // ../shared's samples name each photo's WordNet id beside its timm class index.
        var labels = SharedData.Require("imagenet-samples/labels.csv");
        var records = Csv.Read(File.ReadAllText(labels), labels);
        int wnid = Array.IndexOf(records[0].Fields, "wnid"), index = Array.IndexOf(records[0].Fields, "class_index");
        Assert.All(records.Skip(1), r =>
            Assert.Equal(int.Parse(r.Fields[index], CultureInfo.InvariantCulture), LabelledImages.FolderClass(Path.Combine(dir, r.Fields[wnid]), 1000)));
        Assert.Equal(500, records.Count - 1);
    }

    [Theory]
    [InlineData("zzz", "a class subfolder must be named by an ImageNet WordNet id")]
    [InlineData("100", "class index 100 is out of range: the model has 100 classes (0 to 99)")]
    [InlineData("n01440764", "the model has 100 classes, not 1000")]
    public void OtherFolderNamesAreErrorsNamingTheFolder(string name, string message)
    {
        Folder("3", "a.png");
        var bad = Folder(name, "b.png");
        var (code, _, stderr) = Eval(Small, "--images", dir);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: {bad}: ", stderr.Trim());
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));

        // A labels file says what each image is: the folder names do not matter then.
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["filename,class_index", $"{name}/b.png,5"]);
        (code, _, stderr) = Eval(Small, "--images", dir);
        Assert.True(code == 0, stderr);
    }

    [Theory]
    [InlineData("100")]
    [InlineData("-1")]
    public void LabelsOutsideTheModelsClassesAreErrorsWithTheLine(string label)
    {
        Folder(".", "a.png", "b.png");
        var labels = Path.Combine(dir, "labels.csv");
        File.WriteAllLines(labels, ["filename,class_index", "a.png,3", $"b.png,{label}"]);
        var (code, _, stderr) = Eval(Small, "--images", dir);
        Assert.Equal(2, code);
        Assert.Equal($"error: {labels}:3: class_index {label} is out of range: the model has 100 classes (0 to 99)", stderr.Trim());
    }

    [Fact]
    public void NoImageToScoreIsAnError()
    {
        var labels = Path.Combine(dir, "labels.csv");
        File.WriteAllLines(labels, ["filename,class_index"]);
        var (code, stdout, stderr) = Eval(Small, "--images", dir);
        Assert.Equal((2, ""), (code, stdout));
        Assert.Contains($"error: no image could be evaluated: {labels} lists no images", stderr);

        File.WriteAllBytes(Path.Combine(dir, "broken.png"), [137, 80, 78, 71]);
        File.WriteAllLines(labels, ["filename,class_index", "missing.png,1", "broken.png,2"]);
        foreach (var extra in new[] { Array.Empty<string>(), ["--r", "0", "--r", "8"], ["--json"] })
        {
            (code, stdout, stderr) = Eval(Small, ["--images", dir, .. extra]);
            Assert.Equal((2, ""), (code, stdout));
            Assert.Contains("error: no image could be evaluated: all 2 listed images were missing or unreadable", stderr);
            Assert.Contains("2/2 images (2 skipped)", stderr);
        }
    }

    [Fact]
    public void ProgressCountsTheSkippedImages()
    {
        Folder(".", "a.png", "b.png");
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["filename,class_index", "a.png,1", "gone.png,2", "b.png,3"]);
        foreach (var extra in new[] { Array.Empty<string>(), ["--r", "0", "--r", "8"] })
        {
            var (code, _, stderr) = Eval(Small, ["--images", dir, .. extra]);
            Assert.True(code == 0, stderr);
            Assert.Contains("3/3 images (1 skipped)", stderr);
        }
    }

    [Fact]
    public void NamesWithCommasAndQuotesRoundTripThroughTheCsvFiles()
    {
        // (Quotes inside names are left to the reader's own test: Windows file names cannot hold them.)
        string[] names = ["a,b.png", "c d.png", "plain.png"];
        Folder(".", names);
        File.WriteAllText(Path.Combine(dir, "labels.csv"), "filename,class_index\n\"a,b.png\",1\n \"c d.png\" , 2\nplain.png,3\n");
        var preds = Path.Combine(dir, "preds.csv");
        var (code, _, stderr) = Eval(Small, "--images", dir, "-o", preds);
        Assert.True(code == 0, stderr);
        var rows = Csv.Read(File.ReadAllText(preds), preds);
        Assert.All(rows, r => Assert.Equal(8, r.Fields.Length));
        Assert.Equal(names.Zip(new[] { "1", "2", "3" }).ToArray(), rows.Skip(1).Select(r => (r.Fields[0], r.Fields[1])).ToArray());

        // A comparison's rows: merge and schedule first, a schedule with a comma quoted too.
        (code, _, stderr) = Eval(Small, "--images", dir, "-o", preds, "--r", "0", "--r", "8,-0.5");
        Assert.True(code == 0, stderr);
        rows = Csv.Read(File.ReadAllText(preds), preds);
        Assert.Equal(new[] { "merge", "schedule", "filename", "true_index", "pred1", "pred2", "pred3", "pred4", "pred5", "prob1" }, rows[0].Fields);
        Assert.Equal(1 + 2 * names.Length, rows.Count);
        Assert.All(rows, r => Assert.Equal(10, r.Fields.Length));
        Assert.Equal(new[] { "0", "0", "0", "(8,-0.5)", "(8,-0.5)", "(8,-0.5)" }, rows.Skip(1).Select(r => r.Fields[1]).ToArray());
        Assert.Equal(names.Concat(names).ToArray(), rows.Skip(1).Select(r => r.Fields[2]).ToArray());
    }

    [Fact]
    public void TheCsvReaderFollowsRfc4180()
    {
        var rows = Csv.Read("a, b ,\"c,\"\"d\"\"\"\r\n\r\n\"two\nlines\",x\n  \n\"\",y", "t.csv");
        Assert.Equal(new[] { 1, 3, 6 }, rows.Select(r => r.Line).ToArray());
        Assert.Equal(new[] { "a", "b", "c,\"d\"" }, rows[0].Fields);
        Assert.Equal(new[] { "two\nlines", "x" }, rows[1].Fields);
        Assert.Equal(new[] { "", "y" }, rows[2].Fields);
        Assert.Equal("t.csv:2: a quoted field is not closed (a quote inside a quoted field is written \"\")",
            Assert.Throws<FormatException>(() => Csv.Read("h\n\"open,1\n", "t.csv")).Message);
        Assert.Contains("t.csv:1: expected ','", Assert.Throws<FormatException>(() => Csv.Read("\"a\"b,1", "t.csv")).Message);
        string[] fields = ["a,b", "say \"hi\"", "plain", "two\nlines", "x\ry"];
        Assert.Equal(fields, fields.Select(f => Csv.Read(Csv.Field(f), "t.csv")[0].Fields[0]).ToArray());
        Assert.Equal("plain", Csv.Field("plain"));
    }

    [Fact]
    public void OneScheduleAndSeveralWriteTheSameJsonFields()
    {
        Folder(".", "a.png", "b.png");
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["filename,class_index", "a.png,1", "b.png,2"]);
        string[] Fields(JsonElement result) => result.EnumerateObject().Select(p => p.Name).ToArray();

        var (code, stdout, stderr) = Eval(Small, "--images", dir, "--r", "8", "--json");
        Assert.True(code == 0, stderr);
        using var one = JsonDocument.Parse(stdout);
        var single = Assert.Single(one.RootElement.GetProperty("results").EnumerateArray());
        (code, stdout, stderr) = Eval(Small, "--images", dir, "--r", "0", "--r", "8", "--json");
        Assert.True(code == 0, stderr);
        using var many = JsonDocument.Parse(stdout);
        var rows = many.RootElement.GetProperty("results").EnumerateArray().ToArray();

        Assert.Equal(Fields(rows[1]), Fields(single));
        Assert.Contains("images_per_second_end_to_end", Fields(single));
        Assert.True(single.GetProperty("images_per_second_end_to_end").GetDouble() > 0);
        // The plan the single run ran is the one the comparison measured.
        foreach (var name in new[] { "merge", "schedule", "images" })
            Assert.Equal(rows[1].GetProperty(name).ToString(), single.GetProperty(name).ToString());
        foreach (var name in new[] { "final_tokens", "giga_multiply_adds_per_image" })
            Assert.Equal(rows[1].GetProperty(name).GetDouble(), single.GetProperty(name).GetDouble(), 1e-9);
    }

    [Fact]
    public void ImpossibleOptionsAreOneLineErrors()
    {
        Folder(".", "a.png");
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["filename,class_index", "a.png,1"]);
        var (code, _, stderr) = Eval(Small, "--images", dir, "--limit", "-1");
        Assert.Equal((2, "error: --limit -1: must be 0 (all images) or a positive number of images"), (code, stderr.Trim()));

        // A per-layer list longer than the model is deep, alone or in a comparison.
        foreach (var extra in new[] { new[] { "--r", "[1,1,1,1]" }, ["--r", "0", "--r", "[1,1,1,1]"] })
        {
            (code, _, stderr) = Eval(Small, ["--images", dir, .. extra]);
            Assert.Equal((2, "error: merge schedule [1,1,1,1]: 4 per-layer entries, but the model has 3 blocks (give at most 3)"), (code, stderr.Trim()));
        }
    }

    [Fact]
    public void TheHelpNamesBothCsvLayoutsAndTheFolderRule()
    {
        var (code, stdout, _) = TomeProcess.Run("eval", "--help");
        Assert.Equal(0, code);
        string help = string.Join(' ', stdout.Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("filename,true_index,pred1..pred5,prob1", help);
        Assert.Contains("merge,schedule come first", help);
        Assert.Contains("WordNet id such as n01440764", help);
    }
}
