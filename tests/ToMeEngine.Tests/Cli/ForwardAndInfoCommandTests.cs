using ToMe.Backends.Cpu;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cli;

public sealed class ForwardAndInfoCommandTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-cli-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void ForwardWritesWhatTheEngineComputes()
    {
        var model = Fixtures.ModelPath("deit_t4_distilled");
        var golden = Fixtures.GoldenPath("deit_t4_distilled");
        var output = Path.Combine(dir, "out.safetensors");
        var (code, stdout, stderr) = TomeProcess.Run("forward", "--model", model, "--input", golden, "--r", "12,0.5", "--output", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("198 192 182 168 -> 150", stdout);

        using var file = SafeTensorsFile.Open(output);
        using var goldenFile = SafeTensorsFile.Open(golden);
        Assert.Equal([2, 1000], file.Get("logits").Shape);
        Assert.Equal([198, 192, 182, 168], file.ReadInt32("tokens_per_layer"));
        Assert.Equal([2, 150], file.Get("size").Shape);
        // The same case in the golden file (case5: r = (12, 0.5)) is timm + ToMe's answer.
        Assert.Equal(goldenFile.ReadInt32("case5.group"), file.ReadInt32("group"));
        Close.AssertAll(goldenFile.ReadFloat64("case5.logits_f64"), file.ReadFloat32("logits"), 1e-4, 0, "tome forward logits");
    }

    [Fact]
    public void ForwardWithoutPropAttnMatchesThatCase()
    {
        var model = Fixtures.ModelPath("vit_p14_d3");
        var golden = Fixtures.GoldenPath("vit_p14_d3");
        var output = Path.Combine(dir, "out.safetensors");
        var (code, _, stderr) = TomeProcess.Run("forward", "--model", model, "--input", golden, "--r", "13", "--no-prop-attn", "-o", output);
        Assert.True(code == 0, stderr);
        using var file = SafeTensorsFile.Open(output);
        using var goldenFile = SafeTensorsFile.Open(golden);
        Close.AssertAll(goldenFile.ReadFloat64("case3.logits_f64"), file.ReadFloat32("logits"), 1e-4, 0, "tome forward --no-prop-attn");
    }

    [Theory]
    [InlineData("--r", "abc", "merge schedule 'abc'")]
    [InlineData("--input", "/nonexistent.safetensors", "/nonexistent.safetensors")]
    [InlineData("--backend", "tpu", "--backend 'tpu'")]
    public void BadArgumentsGiveOneLineErrors(string option, string value, string fragment)
    {
        var args = new Dictionary<string, string>
        {
            ["--model"] = Fixtures.ModelPath("vit_p14_d3"),
            ["--input"] = Fixtures.GoldenPath("vit_p14_d3"),
            ["--output"] = Path.Combine(dir, "o.safetensors"),
        };
        args[option] = value;
        var (code, _, stderr) = TomeProcess.Run(["forward", .. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains(fragment, stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void InputOfTheWrongSizeIsNamed()
    {
        // vit_tiny_8's inputs are 224×224 but this model is also 224: make a 64×64 input instead.
        var input = Path.Combine(dir, "small.safetensors");
        new SafeTensorsWriter().Add("input", [1, 3, 64, 64], new float[3 * 64 * 64]).Save(input);
        var (code, _, stderr) = TomeProcess.Run("forward", "--model", Fixtures.ModelPath("vit_p14_d3"), "--input", input, "-o", Path.Combine(dir, "o"));
        Assert.Equal(2, code);
        Assert.Contains("'input' has shape [1, 3, 64, 64], expected [B, 3, 224, 224]", stderr);
    }

    [Fact]
    public void InfoReportsTokensAndCost()
    {
        var (code, stdout, stderr) = TomeProcess.Run("info", "--model", Fixtures.ModelPath("vit_p14_d3"), "--r", "13");
        Assert.True(code == 0, stderr);
        Assert.Contains("tokens per layer 257 244 231 -> 218", stdout);
        var config = ModelLoader.ReadConfig(Fixtures.ModelPath("vit_p14_d3"));
        Assert.Contains($"{config.ParameterCount:N0}", stdout);
    }

    [Fact]
    public void InfoListsEveryArchitecture()
    {
        var (code, stdout, _) = TomeProcess.Run("info", "--list");
        Assert.Equal(0, code);
        Assert.Equal(ArchitectureTable.KnownNames, stdout.Trim().Split('\n'));
    }
}
