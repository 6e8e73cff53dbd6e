using System.Text.Json;
using ToMe.Backends.Cpu;
using ToMe.Model;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cli;

/// <summary>--precision on the commands that run a model: one parser, one-line errors, the precision reported back.</summary>
public sealed class PrecisionOptionTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-cli-precision-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Model => Fixtures.ModelPath("vit_p14_d3");

    private static string Picture => RepoData.Path(Path.Combine("images", "png_rgb.png"));

    [Fact]
    public void ClassifyInInt8ReportsIt()
    {
        var (code, stdout, stderr) = TomeProcess.Run("classify", Picture, "--model", Model, "--precision", "int8", "--top", "2", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("int8", json.RootElement.GetProperty("precision").GetString());
        Assert.Equal("cpu", json.RootElement.GetProperty("backend").GetString()); // auto backend: int8 picks the CPU
        Assert.Equal(2, json.RootElement.GetProperty("results")[0].GetProperty("predictions").GetArrayLength());
    }

    [Theory]
    [InlineData("classify", "bf16", "error: bf16 needs the CUDA backend; the CPU backend runs fp32 and int8")]
    [InlineData("eval", "fp16", "error: fp16 needs the CUDA backend; the CPU backend runs fp32 and int8")]
    [InlineData("classify", "int4", "error: --precision: precision 'int4' is not one of fp32, tf32, bf16, fp16, int8, auto")]
    [InlineData("bench", "tf32", "error: tf32 needs the CUDA backend; the CPU backend runs fp32 and int8")]
    [InlineData("forward", "fp9", "error: --precision: precision 'fp9' is not one of fp32, tf32, bf16, fp16, int8, auto")]
    [InlineData("info", "half8", "error: --precision: precision 'half8' is not one of fp32, tf32, bf16, fp16, int8, auto")]
    public void PrecisionsABackendDoesNotRunAreOneLineErrors(string command, string precision, string message)
    {
        File.Copy(Picture, Path.Combine(dir, "a.png"), overwrite: true);
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["filename,class_index", "a.png,3"]);
        string[] args = command switch
        {
            "classify" => ["classify", Picture, "--model", Model, "--backend", "cpu"],
            "eval" => ["eval", "--model", Model, "--images", dir, "--backend", "cpu"],
            "bench" => ["bench", "--model", Model, "--backend", "cpu", "--runs", "1", "--warmup", "0"],
            "forward" => ["forward", "--model", Model, "--input", Fixtures.GoldenPath("vit_p14_d3"), "--output", Path.Combine(dir, "x.safetensors")],
            _ => ["info", "--model", Model],
        };
        var (code, _, stderr) = TomeProcess.Run([.. args, "--precision", precision]);
        Assert.Equal(2, code);
        Assert.Equal(message, stderr.Trim());
    }

    [Theory]
    [InlineData("bogus", "error: TOME_INT8_KERNEL 'bogus' is not one of scalar, avx2, avx512bw, avxvnni, avx512vnni")]
    [InlineData(" scalar ", null)] // a family every machine runs (surrounding spaces ignored): int8 runs on it
    public void AnInt8KernelFamilyForcedByTheEnvironmentIsCheckedInOneLine(string family, string? message)
    {
        var (code, stdout, stderr) = TomeProcess.Run(new Dictionary<string, string?> { ["TOME_INT8_KERNEL"] = family },
            "classify", Picture, "--model", Model, "--precision", "int8", "--top", "1");
        if (message is null)
        {
            Assert.True(code == 0, stderr);
            Assert.Contains(Path.GetFileName(Picture), stdout);
            return;
        }
        Assert.Equal(2, code);
        Assert.Equal(message, stderr.Trim());
    }

    [Fact]
    public void BenchJsonNamesThePrecisionItRan()
    {
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Model, "--backend", "cpu", "--precision", "int8",
            "--batch", "1", "--r", "0", "--runs", "1", "--warmup", "0", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("int8", json.RootElement.GetProperty("precision").GetString());
    }

    [Fact]
    public void ForwardInInt8WritesWhatTheEngineComputesAndSaysSo()
    {
        var golden = Fixtures.GoldenPath("vit_p14_d3");
        var output = Path.Combine(dir, "int8.safetensors");
        var (code, stdout, stderr) = TomeProcess.Run("forward", "--model", Model, "--input", golden, "--r", "13", "--precision", "int8", "--output", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("(cpu int8)", stdout);
        using var file = SafeTensorsFile.Open(output);
        Assert.Equal("int8", file.Metadata["precision"]);
        using var goldenFile = SafeTensorsFile.Open(golden);
        using var backend = new CpuBackend();
        using var pass = new ForwardPass(backend, Fixtures.Model("vit_p14_d3"), Precision.Int8);
        var expected = pass.Run(goldenFile.ReadFloat32("input"), 2, new ForwardOptions { Schedule = ToMe.Merging.MergeSchedule.Constant(13) });
        Assert.Equal(expected.Logits, file.ReadFloat32("logits"));
    }

    [Fact]
    public void InfoDescribesTheInt8Layers()
    {
        var (code, stdout, stderr) = TomeProcess.Run("info", "--model", Model, "--precision", "int8");
        Assert.True(code == 0, stderr);
        Assert.Contains("precision        int8 (CPU): qkv, proj, fc1, fc2 of every block in int8, patch embedding and head in fp32; Linear weights", stdout);
    }
}
