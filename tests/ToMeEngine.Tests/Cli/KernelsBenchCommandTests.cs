using System.Text.Json;
using ToMe.Backends.Cuda;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

/// <summary><c>tome kernels bench</c>: its options are checked first; on cuda without a device it says so and fails, with one it measures.</summary>
public class KernelsBenchCommandTests
{
    [Fact]
    public void UnknownBackendAndModelAreNamed()
    {
        var (code, _, stderr) = TomeProcess.Run("kernels", "bench", "--backend", "rocm");
        Assert.NotEqual(0, code);
        Assert.Contains("'rocm'", stderr);
        (code, _, stderr) = TomeProcess.Run("kernels", "bench", "--backend", "cuda", "--models", "ViT-S,ViT-X");
        Assert.NotEqual(0, code);
        Assert.Contains("ViT-X", stderr);
    }

    [Fact]
    public void CpuModelsAreCheckedAndGemmWeightsStreamedByDefault()
    {
        var (code, _, stderr) = TomeProcess.Run("kernels", "bench", "--models", "ViT-Ti,ViT-X");
        Assert.NotEqual(0, code);
        Assert.Contains("ViT-X", stderr);
        (code, var stdout, stderr) = TomeProcess.Run("kernels", "bench", "--models", "ViT-Ti", "--batch", "1", "--threads", "1", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.False(json.RootElement.GetProperty("cached_weights").GetBoolean());
        var results = json.RootElement.GetProperty("results");
        // attention's products, the whole attention op, four GEMMs, LayerNorm: ViT-Ti only
        Assert.Equal(7, results.GetArrayLength());
        Assert.All(results.EnumerateArray(), r =>
        {
            Assert.Equal("ViT-Ti", r.GetProperty("model").GetString());
            Assert.True(r.GetProperty("milliseconds").GetDouble() > 0);
        });
    }

    [Fact]
    public void ThreadTimeNeedsOneThreadAndTimesEveryKernel()
    {
        var (code, _, stderr) = TomeProcess.Run("kernels", "bench", "--models", "ViT-Ti", "--batch", "1", "--threads", "2", "--thread-time");
        Assert.NotEqual(0, code);
        Assert.Contains("--thread-time", stderr);
        if (!OperatingSystem.IsLinux())
            return;
        (code, var stdout, stderr) = TomeProcess.Run("kernels", "bench", "--models", "ViT-Ti", "--batch", "1", "--threads", "1",
            "--thread-time", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.True(json.RootElement.GetProperty("thread_time").GetBoolean());
        Assert.True(json.RootElement.GetProperty("fma_peak_gflops").GetDouble() > 0);
        var results = json.RootElement.GetProperty("results");
        Assert.Equal(7, results.GetArrayLength());
        Assert.All(results.EnumerateArray(), r => Assert.True(r.GetProperty("milliseconds").GetDouble() > 0));
    }

    [Fact]
    public void CudaRunsEveryOpOrSaysThereIsNoDevice()
    {
        var (code, stdout, stderr) = TomeProcess.Run("kernels", "bench", "--backend", "cuda", "--models", "ViT-S", "--batch", "1",
            "--peak-gemm", "64", "--peak-copy-mib", "1", "--time-ms", "0", "--json");
        if (!CudaBackend.TryCreate(out var gpu, out _))
        {
            Assert.NotEqual(0, code);
            Assert.Contains("no CUDA device", stderr);
            return;
        }
        gpu!.Dispose();
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("cuda", json.RootElement.GetProperty("backend").GetString());
        Assert.True(json.RootElement.GetProperty("peaks").GetProperty("gemm_tflops").GetDouble() > 0);
        Assert.Equal(16, json.RootElement.GetProperty("results").GetArrayLength());
    }
    // One image's LayerNorm rows fit in L2 and beat a copy through memory several times over; against a copy of the same
    // bytes (from the caches too) it is below 100%: it reads and writes what the copy does, and computes besides.
    [Fact]
    public void LayerNormIsAPercentageOfACopyOfTheSameBytes()
    {
        string[] clock = OperatingSystem.IsLinux() ? ["--threads", "1", "--thread-time"] : ["--threads", "1"];
        var (code, stdout, stderr) = TomeProcess.Run(["kernels", "bench", "--models", "ViT-Ti", "--batch", "1,16", "--json", .. clock]);
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var norms = json.RootElement.GetProperty("results").EnumerateArray().Where(r => r.GetProperty("kernel").GetString() == "layer norm").ToList();
        Assert.Equal(2, norms.Count);
        Assert.All(norms, r =>
        {
            var percent = r.GetProperty("percent_of_peak").GetDouble();
            Assert.True(percent > 0 && percent < 100, $"batch {r.GetProperty("batch").GetInt32()}: {percent:F0}% of a copy of the same bytes");
        });
    }
}
