using ToMe.Backends;
using ToMe.Backends.Cuda;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Cuda;

/// <summary>Backend selection by name; the emulated device under <c>cuda</c> only; what happens without any driver.</summary>
public class BackendSelectionTests
{
    [Fact]
    public void CpuAndUnknownNames()
    {
        using (var cpu = BackendFactory.Create("cpu", 2))
        {
            Assert.Equal("cpu", cpu.Name);
            Assert.Matches(@"^\S.* \(2 threads, (AVX-512|AVX2|NEON|no SIMD)\)$", cpu.DeviceName);
        }
        using (var one = BackendFactory.Create("cpu", 1))
            Assert.Matches(@" \(1 thread, [^()]+\)$", one.DeviceName);
        var error = Assert.Throws<ArgumentException>(() => BackendFactory.Create("tpu"));
        Assert.Contains("'tpu'", error.Message);
    }

    [Fact]
    public void AutoNeverPicksTheEmulatedDeviceButCudaUsesIt()
    {
        EmulatedDevice.Require();
        using (var auto = BackendFactory.Create("auto"))
            Assert.Equal("cpu", auto.Name);
        using (var cuda = BackendFactory.Create("cuda"))
        {
            Assert.Equal("cuda", cuda.Name);
            Assert.True(BackendFactory.Cuda(cuda)!.Device.IsEmulated);
            var device = BackendFactory.Cuda(cuda)!.Device;
            Assert.Equal($"{device.Name} (cuda:0, sm_{device.ComputeMajor}{device.ComputeMinor}, {Math.Round(device.TotalMemoryBytes / (double)(1L << 30))} GiB)", cuda.DeviceName);
        }
        using var engine = ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"));
        Assert.Equal("cpu", engine.BackendName);
        Assert.Contains($" ({Environment.ProcessorCount} thread", engine.DeviceName);
        // Not for a half precision either: it is refused, naming the way to run it there.
        foreach (var precision in new[] { Precision.Float16, Precision.BFloat16, Precision.TensorFloat32 })
            Assert.Contains("emulated test device", Assert.Throws<NotSupportedException>(() => BackendFactory.Create("auto", precision: precision)).Message);
        using var half = BackendFactory.Create("cuda", precision: Precision.Float16);
        Assert.True(BackendFactory.Cuda(half)!.Device.IsEmulated);
    }

    [Fact]
    public void WithGpuAutoPicksCuda()
    {
        GpuRequirement.RequireRealGpu("auto picks a GPU, never the emulated device");
        using var auto = BackendFactory.Create("auto");
        Assert.Equal("cuda", auto.Name);
    }

    /// <summary>A `tome` process whose resolver finds no driver (an empty TOME_CUDA_LIB_DIR, where none is installed system-wide).</summary>
    private static (int ExitCode, string Stdout, string Stderr) WithoutDriver(TempDirectory empty, params string[] args)
    {
        var environment = new Dictionary<string, string?> { ["TOME_CUDA_LIB_DIR"] = empty.Path };
        var probe = TomeProcess.Run(environment, "devices");
        if (probe.ExitCode == 0)
            Assert.Skip("a CUDA driver is installed where the system loader finds it");
        return TomeProcess.Run(environment, args);
    }

    [Fact]
    public void WithoutDriverCudaIsOneLineErrorAndAutoRunsOnCpu()
    {
        using var dir = new TempDirectory();
        string[] forward = ["forward", "--model", Fixtures.ModelPath("vit_p14_d3"), "--input", Fixtures.GoldenPath("vit_p14_d3"),
            "--output", Path.Combine(dir.Path, "out.safetensors"), "--backend"];
        var (code, _, stderr) = WithoutDriver(dir, [.. forward, "cuda"]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: no CUDA device: ", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        var auto = WithoutDriver(dir, [.. forward, "auto"]);
        Assert.True(auto.ExitCode == 0, auto.Stderr);
        Assert.Contains("(cpu fp32)", auto.Stdout);   // the backend and the precision it resolved
    }

    [Fact]
    public void WithoutDriverHalfPrecisionOnAutoIsOneLineErrorNamingBothReasons()
    {
        using var dir = new TempDirectory();
        var (code, _, stderr) = WithoutDriver(dir, ["forward", "--model", Fixtures.ModelPath("vit_p14_d3"), "--input", Fixtures.GoldenPath("vit_p14_d3"),
            "--output", Path.Combine(dir.Path, "out.safetensors"), "--backend", "auto", "--precision", "fp16"]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: fp16 needs the CUDA backend, and there is no CUDA device: ", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void DevicesWithoutDriverExitsNonZeroAndSaysWhatWasTried()
    {
        using var dir = new TempDirectory();
        var (exitCode, _, error) = WithoutDriver(dir, "devices");
        Assert.NotEqual(0, exitCode);
        Assert.Contains("no CUDA driver found (tried: ", error);
        Assert.Contains(Path.Combine(dir.Path, "libcuda.so.1") + " (absent)", error);

        var (jsonExit, json, _) = WithoutDriver(dir, "devices", "--json");
        Assert.NotEqual(0, jsonExit);
        using var document = System.Text.Json.JsonDocument.Parse(json);
        Assert.False(document.RootElement.GetProperty("hasDevice").GetBoolean());
        Assert.False(document.RootElement.GetProperty("driver").GetProperty("found").GetBoolean());
        Assert.NotEqual(0, document.RootElement.GetProperty("driver").GetProperty("tried").GetArrayLength());
    }

    [Fact]
    public void TomeForwardOnCudaMatchesCpu()
    {
        BackendPair.CreateGpu().Dispose();
        using var dir = new TempDirectory();
        var model = Fixtures.ModelPath("vit_p14_d3");
        var input = Fixtures.GoldenPath("vit_p14_d3");
        var cpuOut = Path.Combine(dir.Path, "cpu.safetensors");
        var gpuOut = Path.Combine(dir.Path, "gpu.safetensors");
        var cpuRun = TomeProcess.Run("forward", "--model", model, "--input", input, "--r", "13", "--output", cpuOut);
        Assert.True(cpuRun.ExitCode == 0, cpuRun.Stderr);
        var gpuRun = TomeProcess.Run("forward", "--model", model, "--input", input, "--r", "13", "--backend", "cuda", "--output", gpuOut);
        Assert.True(gpuRun.ExitCode == 0, gpuRun.Stderr);
        using var cpuFile = SafeTensorsFile.Open(cpuOut);
        using var gpuFile = SafeTensorsFile.Open(gpuOut);
        Close.AssertAll(cpuFile.ReadFloat32("logits"), gpuFile.ReadFloat32("logits"), 1e-3, 0, "tome forward --backend cuda vs cpu");
        Assert.Equal(cpuFile.ReadInt32("group"), gpuFile.ReadInt32("group"));
    }

    /// <summary>
    /// From the command line, on the CUDA backend (the emulated device in CI): a golden fixture's merge decisions, layer by
    /// layer, its groups and sizes, and its logits within 1e-4 of timm + official ToMe in float64.
    /// </summary>
    [Theory]
    [InlineData("vit_p14_d3", "case4")]
    [InlineData("deit_t4_distilled", "case5")]
    public void TomeForwardOnCudaReproducesGoldenFixture(string model, string caseKey)
    {
        BackendPair.CreateGpu().Dispose();
        using var golden = SafeTensorsFile.Open(Fixtures.GoldenPath(model));
        var fixture = Fixtures.Cases(golden).Single(c => c.Key == caseKey);
        Assert.Contains(fixture.RPerLayer, r => r > 0);
        using var dir = new TempDirectory();
        var output = Path.Combine(dir.Path, "out.safetensors");
        string[] args = ["forward", "--model", Fixtures.ModelPath(model), "--input", Fixtures.GoldenPath(model), "--r", fixture.Schedule.ToString(),
            "--merges", "--backend", "cuda", "--output", output];
        var run = TomeProcess.Run(fixture.PropAttn ? args : [.. args, "--no-prop-attn"]);
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var result = SafeTensorsFile.Open(output);
        Assert.Equal(fixture.TokensPerLayer, result.ReadInt32("tokens_per_layer"));
        for (int l = 0; l < fixture.RPerLayer.Length; l++)
        {
            if (fixture.RPerLayer[l] == 0)
                continue;
            Assert.Equal(golden.ReadInt32($"{caseKey}.layer{l}.src_idx"), result.ReadInt32($"layer{l}.src_idx"));
            Assert.Equal(golden.ReadInt32($"{caseKey}.layer{l}.dst_idx"), result.ReadInt32($"layer{l}.dst_idx"));
        }
        Assert.Equal(golden.ReadInt32($"{caseKey}.group"), result.ReadInt32("group"));
        Assert.Equal(golden.ReadFloat32($"{caseKey}.size"), result.ReadFloat32("size"));
        Close.AssertAll(golden.ReadFloat64($"{caseKey}.logits_f64"), result.ReadFloat32("logits"), atol: 1e-4, rtol: 0, what: $"{model} {caseKey} logits");
    }
}
