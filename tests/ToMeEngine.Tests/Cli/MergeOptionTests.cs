using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cli;

public sealed class MergeOptionTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-merge-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void ForwardRunsTheChosenStrategy()
    {
        var output = Path.Combine(dir, "kth.safetensors");
        var (code, stdout, stderr) = TomeProcess.Run("forward", "-m", Fixtures.ModelPath("vit_p14_d3"), "-i", Fixtures.GoldenPath("vit_p14_d3"),
            "--merge", "kth", "--k", "2", "-o", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("merge kth(k=2)", stdout);
        Assert.Contains("257 128 64 -> 32", stdout);
        using var file = SafeTensorsFile.Open(output);
        Assert.Equal("kth(k=2)", file.Metadata["merge"]);
        Assert.Equal(-1, file.ReadInt32("group")[256]);
    }

    [Fact]
    public void ForwardReportsToMatoCountsPerImage()
    {
        var (code, stdout, stderr) = TomeProcess.Run("forward", "-m", Fixtures.ModelPath("vit_p14_d3"), "-i", Fixtures.GoldenPath("vit_p14_d3"),
            "--merge", "tomato", "--threshold", "0.35", "-o", Path.Combine(dir, "t.safetensors"));
        Assert.True(code == 0, stderr);
        Assert.Contains("(per image ", stdout);
    }

    [Theory]
    [InlineData("kth", "257 17 1 -> 1")]
    [InlineData("random", "257 244 231 -> 218")]
    [InlineData("tomato", "the token count depends on the image")]
    [InlineData("none", "257 257 257 -> 257")]
    public void InfoPlansEachStrategy(string merge, string expected)
    {
        string[] extra = merge switch
        {
            "kth" => ["--k", "15"],
            "random" => ["--seed", "3"],
            "tomato" => ["--threshold", "0.8"],
            _ => [],
        };
        var (code, stdout, stderr) = TomeProcess.Run(["info", "-m", Fixtures.ModelPath("vit_p14_d3"), "--r", "13", "--merge", merge, .. extra]);
        Assert.True(code == 0, stderr);
        Assert.Contains(expected, stdout);
    }

    [Theory]
    [InlineData(new[] { "--merge", "kth" }, "--merge kth needs --k")]
    [InlineData(new[] { "--merge", "kth", "--k", "two" }, "--k 'two' is not a valid integer")]
    [InlineData(new[] { "--merge", "random" }, "--merge random needs --seed")]
    [InlineData(new[] { "--merge", "tomato", "--threshold", "x" }, "--threshold 'x' is not a valid number")]
    [InlineData(new[] { "--merge", "tome", "--seed", "1" }, "--merge tome does not take --seed")]
    [InlineData(new[] { "--merge", "best" }, "--merge 'best'")]
    public void BadMergeArgumentsGiveOneLineErrors(string[] args, string fragment)
    {
        var (code, _, stderr) = TomeProcess.Run(["forward", "-m", Fixtures.ModelPath("vit_p14_d3"), "-i", Fixtures.GoldenPath("vit_p14_d3"),
            "-o", Path.Combine(dir, "o.safetensors"), .. args]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains(fragment, stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
