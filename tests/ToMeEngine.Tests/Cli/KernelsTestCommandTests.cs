using System.Text.Json;
using ToMe.Backends.Checks;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

/// <summary><c>tome kernels test</c> on the CPU backend (the CUDA run is in the device tests): the table, the JSON, the filter.</summary>
public class KernelsTestCommandTests
{
    [Fact]
    public void CpuRunPassesAndPrintsOneRowPerCheck()
    {
        var (code, stdout, stderr) = TomeProcess.Run("kernels", "test", "--backend", "cpu", "--filter", "layer_norm");
        Assert.True(code == 0, stderr + stdout);
        // The CPU runs the fp32 checks only.
        int checks = OpChecks.All.Count(c => c.Precision == Precision.Float32 && c.Name.Contains("layer_norm", StringComparison.Ordinal));
        Assert.Equal(checks, stdout.Split('\n').Count(l => l.StartsWith("| layer_norm |", StringComparison.Ordinal)));
        Assert.Contains($"{checks}/{checks} passed", stdout);
    }

    [Fact]
    public void JsonListsEveryResultWithItsErrors()
    {
        var (code, stdout, stderr) = TomeProcess.Run("kernels", "test", "--backend", "cpu", "--filter", "select_top_r", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(0, json.RootElement.GetProperty("failed").GetInt32());
        var results = json.RootElement.GetProperty("results");
        Assert.Equal(OpChecks.All.Count(c => c.Op == "select_top_r"), results.GetArrayLength());
        Assert.All(results.EnumerateArray(), r => Assert.Equal("exact", r.GetProperty("tolerance").GetString()));
    }

    [Fact]
    public void AFilterMatchingNothingIsAnError()
    {
        var (code, _, stderr) = TomeProcess.Run("kernels", "test", "--backend", "cpu", "--filter", "no such op");
        Assert.NotEqual(0, code);
        Assert.Contains("matches no check", stderr);
    }
}
