using ToMe.Tests.Bridges;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

/// <summary>What the help and models/README.md promise: the formats visualize reads, the default model of every command that takes --model.</summary>
public sealed class HelpAndDefaultModelTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-cli-help-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Model => Fixtures.ModelPath("vit_p14_d3");

    [Fact]
    public void VisualizeReadsWhatItsHelpLists()
    {
        var (_, help, _) = TomeProcess.Run("visualize", "--help");
        Assert.Contains("GIF", help);
        var gif = BridgeImages.Write(dir, "picture.gif", BridgeImages.Gif());
        var (code, _, stderr) = TomeProcess.Run("visualize", gif, "--model", Model, "--backend", "cpu", "-o", Path.Combine(dir, "v.png"));
        Assert.True(code == 0, stderr);
        Assert.Contains("note: GIF decoded by", stderr);
    }

    [Theory]
    [InlineData("info")]
    [InlineData("forward")]
    [InlineData("bench")]
    public void EveryCommandTakingModelFallsBackToTheDefaultModel(string command)
    {
        // As FirstRunCliTests: no model in $TOME_MODELS (empty) nor in the checkout's models/.
        if (Directory.Exists(Path.Combine(RepoData.CheckoutRoot, "models")) &&
            Directory.GetDirectories(Path.Combine(RepoData.CheckoutRoot, "models")).Length > 0)
            Assert.Skip("this checkout's models/ holds a model, which the command would use");
        var empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
        string[] args = command switch
        {
            "forward" => ["forward", "--input", Fixtures.GoldenPath("vit_p14_d3"), "-o", Path.Combine(dir, "f.safetensors")],
            _ => [command],
        };
        var (code, _, stderr) = TomeProcess.RunProgram("dotnet", [Path.Combine(AppContext.BaseDirectory, "tome.dll"), .. args],
            workingDirectory: dir, environment: new Dictionary<string, string?> { ["TOME_MODELS"] = empty });
        Assert.Equal(2, code);
        Assert.StartsWith($"error: no --model given and no model found in {empty}", stderr);
    }

    [Fact]
    public void InfoWithoutModelDescribesTheDefaultModel()
    {
        var model = SharedData.Require("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        var (code, stdout, stderr) = TomeProcess.Run(new Dictionary<string, string?> { ["TOME_MODELS"] = model }, "info", "--r", "13");
        Assert.True(code == 0, stderr);
        Assert.Contains("architecture     vit_tiny_patch16_224", stdout);
    }
}
