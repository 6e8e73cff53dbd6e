using ToMe.Model;
using ToMe.Tests.Support;

namespace ToMe.Tests.FirstRun;

/// <summary>What a new user meets on a fresh checkout: each wrong turn gets one line that says what to do.</summary>
public sealed class FirstRunCliTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-first-run-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Model => Fixtures.ModelPath("vit_p14_d3");

    [Fact]
    public void ADirectoryGivenAsAnImageIsNamedAsOne()
    {
        var folder = Directory.CreateDirectory(Path.Combine(dir, "photos")).FullName;
        var (code, _, stderr) = TomeProcess.Run("classify", folder, "--model", Model, "--backend", "cpu");
        Assert.Equal(1, code);
        Assert.Contains($"{folder} is a directory, not an image file", stderr);
        Assert.DoesNotContain("Could not find file", stderr);
    }

    [Fact]
    public void AMissingModelPathSaysTheTwoWaysToGetOne()
    {
        var missing = Path.Combine(dir, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        var (code, _, stderr) = TomeProcess.Run("classify", RepoData.Path("images/png_rgb.png"), "--model", missing);
        Assert.Equal(2, code);
        Assert.Contains($"{missing}: no such model folder or .safetensors file", stderr);
        AssertBothWays(stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void NoModelAnywhereSaysTheTwoWaysToGetOne()
    {
        // The tool outside a checkout: its working directory's models/ and $TOME_MODELS, both empty here.
        if (Directory.Exists(Path.Combine(RepoData.CheckoutRoot, "models")) &&
            Directory.GetDirectories(Path.Combine(RepoData.CheckoutRoot, "models")).Length > 0)
            Assert.Skip("this checkout's models/ holds a model, which the command would use");
        var empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
        var (code, _, stderr) = TomeProcess.RunProgram("dotnet", [Path.Combine(AppContext.BaseDirectory, "tome.dll"), "classify", "x.jpg"],
            workingDirectory: dir, environment: new Dictionary<string, string?> { ["TOME_MODELS"] = empty });
        Assert.Equal(2, code);
        Assert.Contains($"no --model given and no model found in {empty}", stderr);
        AssertBothWays(stderr);
    }

    private static void AssertBothWays(string message)
    {
        Assert.Contains("config.json + model.safetensors", message);
        Assert.Contains("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", message);
    }

    [Theory]
    [InlineData("vit_tiny_patch16_244", "vit_tiny_patch16_224")]
    [InlineData("deit_small_distiled_patch16_224.fb_in1k", "deit_small_distilled_patch16_224")]
    [InlineData("vit_base_patch14_reg4_dinov", "vit_base_patch14_reg4_dinov2")]
    [InlineData("deit3_larg_patch16_384", "deit3_large_patch16_384")]
    public void AnArchitectureTypoSuggestsTheClosestNames(string typo, string closest)
    {
        var message = Assert.Throws<ToMe.Weights.InvalidModelException>(() => ArchitectureTable.Resolve(typo)).Message;
        Assert.StartsWith($"unknown architecture '{typo}' (did you mean {closest}", message);
    }

    [Fact]
    public void TheClosestNamesAreTheNearestByEditDistance()
    {
        Assert.Equal(0, ArchitectureTable.EditDistance("vit", "vit"));
        Assert.Equal(3, ArchitectureTable.EditDistance("kitten", "sitting"));
        Assert.Equal(["vit_small_patch16_224"], ArchitectureTable.Closest("vit_smal_patch16_224"));
        // The nearest, then up to two more at most one edit further; only listed names (not the MAE names) take part.
        Assert.Equal(["vit_base_patch16_224", "vit_base_patch16_384"], ArchitectureTable.Closest("vit_base_patch16_2"));
    }

    [Theory]
    [InlineData("resnet50")]
    [InlineData("convnext_tiny.fb_in1k")]
    [InlineData("swin_base_patch4_window7_224")]
    public void AnotherFamilyGetsNoSuggestionButWhatTheEngineRuns(string name)
    {
        Assert.Empty(ArchitectureTable.Closest(name.Split('.')[0]));
        var message = Assert.Throws<ToMe.Weights.InvalidModelException>(() => ArchitectureTable.Resolve(name)).Message;
        Assert.Equal($"unknown architecture '{name}': the engine runs timm's ViT, DeiT, DeiT III and DINOv2 Vision Transformers only (`tome info --list` lists their names)", message);
    }

    [Fact]
    public void SuggestionsAreListedNames()
    {
        var (_, stdout, _) = TomeProcess.Run("info", "--list");
        var listed = stdout.Trim().Split('\n');
        foreach (var typo in (string[])["vit_base_patch16", "vit_huge_patch14", "vit_larg_patch16", "deit_tiny_patch16", "vit_small_patch14_dino"])
            Assert.All(ArchitectureTable.Closest(typo), name => Assert.Contains(name, listed));
    }

    [Fact]
    public void ANameWithoutAKnownDefaultTagIsGivenARealRepositoryAsExample()
    {
        var timm = File.ReadLines(RepoData.Path("timm-vit-deit-names.txt")).Where(l => !l.StartsWith('#')).ToHashSet();
        var (code, _, stderr) = TomeProcess.Run("info", "--model", "vit_base_patch16");
        Assert.Equal(2, code);
        Assert.DoesNotContain("vit_base_patch16.", stderr);
        var example = System.Text.RegularExpressions.Regex.Match(stderr, @"e\.g\. timm/(?<name>[a-z0-9_]+)\.(?<tag>[a-z0-9_]+)");
        Assert.True(example.Success, stderr);
        Assert.Contains(example.Groups["name"].Value, timm);
    }

    [Fact]
    public void InfoListsOnlyNamesTimmRegisters()
    {
        var timm = File.ReadLines(RepoData.Path("timm-vit-deit-names.txt")).Where(l => !l.StartsWith('#')).ToHashSet();
        var (code, stdout, _) = TomeProcess.Run("info", "--list");
        Assert.Equal(0, code);
        var listed = stdout.Trim().Split('\n');
        Assert.All(listed, name => Assert.Contains(name, timm));
        Assert.DoesNotContain("vit_tiny_patch8_224", listed);
        Assert.DoesNotContain("vit_huge_patch8_384", listed);
        // And every timm name the engine can run is listed.
        foreach (var name in timm.Where(n => ArchitectureTable.TryResolve(n, out _)))
            Assert.Contains(name, listed);
    }

    [Fact]
    public void BuildScriptIsExecutable()
    {
        if (OperatingSystem.IsWindows())
            Assert.Skip("file modes are a Unix notion");
        else
            foreach (var script in (string[])["build.ps1", ".ci/run"])
                Assert.True(File.GetUnixFileMode(Path.Combine(RepoData.CheckoutRoot, script)).HasFlag(UnixFileMode.UserExecute), $"{script} is not executable");
    }

    [Fact]
    public void CiSummarisesWhyTestsWereSkipped()
    {
        var trx = Path.Combine(dir, "results.trx");
        File.WriteAllText(trx, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010"><Results>
            {Result("A.B.NeedsGpu1", "NotExecuted", "no CUDA device: driver absent\n  tried: libcuda.so.1")}
            {Result("A.B.NeedsGpu2", "NotExecuted", "no CUDA device: driver absent\n  tried: libcuda.so.1")}
            {Result("A.C.NeedsShared", "NotExecuted", "needs ../shared/models")}
            {Result("A.C.Passes", "Passed", null)}
            </Results></TestRun>
            """);
        var (code, stdout, stderr) = RunPython(Path.Combine(RepoData.CheckoutRoot, ".ci", "skip_summary.py"), trx);
        Assert.True(code == 0, stderr);
        Assert.Equal(
            ["Skipped: 3 test(s), by reason:", "2  no CUDA device: driver absent", "B.NeedsGpu1, B.NeedsGpu2", "1  needs ../shared/models", "C.NeedsShared"],
            stdout.Trim().Split('\n').Select(l => l.Trim()));

        static string Result(string name, string outcome, string? message) =>
            $"""<UnitTestResult testName="{name}" outcome="{outcome}">""" +
            (message is null ? "" : $"<Output><ErrorInfo><Message>{message}</Message></ErrorInfo></Output>") + "</UnitTestResult>";
    }

    [Fact]
    public void CiRunsTheSkipSummaryAndKeepsItsClosingCountLast()
    {
        var run = File.ReadAllText(Path.Combine(RepoData.CheckoutRoot, ".ci", "run"));
        Assert.Contains(".ci/skip_summary.py", run);
        Assert.True(run.IndexOf("skip_summary.py", StringComparison.Ordinal) < run.IndexOf("passed, %d failed, %d skipped", StringComparison.Ordinal));
    }

    private static (int, string, string) RunPython(params string[] args)
    {
        if (!File.Exists("/usr/bin/python3"))
            Assert.Skip("needs /usr/bin/python3, which .ci/run uses");
        return TomeProcess.RunProgram("/usr/bin/python3", args);
    }
}
