using System.CommandLine;
using System.Text.Json;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;
using ToMe.Cli;

namespace ToMe.Tests.Cuda;

[Collection(nameof(EmulatorAloneCollection))]
public class CliTests
{
    private static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        var root = new RootCommand("tome");
        foreach (var command in CommandTable.All())
            root.Subcommands.Add(command);
        var output = new StringWriter();
        var error = new StringWriter();
        var exitCode = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exitCode, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData(12_000_000, "for the forward pass's workspace", "(smaller batches still run)")]
    [InlineData(20_000_000, "for cuBLAS's workspace", "(one allocation per engine: a smaller batch needs it too)")]
    public void OutOfGpuMemoryIsOneLineWithATrueHint(long deviceBytes, string what, string hint)
    {
        Support.EmulatedDevice.Require();
        using var dir = new TempDirectory();
        var environment = new Dictionary<string, string?> { ["TOME_EMU_MEMORY_BYTES"] = deviceBytes.ToString() };
        var (code, _, stderr) = Support.TomeProcess.Run(environment, "forward", "--model", Support.Fixtures.ModelPath("vit_t4"),
            "--input", Support.Fixtures.GoldenPath("vit_t4"), "-o", Path.Combine(dir.Path, "out.safetensors"), "--backend", "cuda");
        Assert.Equal(1, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: out of GPU memory: ", line);
        Assert.Contains(what, line);
        Assert.Contains(hint, line);
    }

    [Fact]
    public void ADeviceThatDoesNotExistIsOneLineNamingIt()
    {
        Support.GpuRequirement.RequireDevice();
        foreach (var command in new[] { "test", "bench" })
        {
            var (code, _, stderr) = Support.TomeProcess.Run("kernels", command, "--backend", "cuda", "--device", "99");
            Assert.Equal(2, code);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: no CUDA device 99: ", line);
        }
    }

    [Fact]
    public void EveryTimingOnTheEmulatedDeviceSaysSo()
    {
        Support.EmulatedDevice.Require();
        using var dir = new TempDirectory();
        var images = Directory.CreateDirectory(Path.Combine(dir.Path, "images", "3")).FullName;
        File.Copy(Support.RepoData.Path(Path.Combine("images", "png_rgb.png")), Path.Combine(images, "a.png"));
        var model = Support.Fixtures.ModelPath("vit_t4");
        string[][] commands =
        [
            ["eval", "--model", model, "--images", Path.GetDirectoryName(images)!, "--backend", "cuda", "--batch", "1"],
            ["bench", "--model", model, "--images", images, "--backend", "cuda", "--batch", "1", "--runs", "1", "--warmup", "0"],
            ["kernels", "bench", "--backend", "cuda", "--models", "ViT-S", "--batch", "1", "--peak-gemm", "16", "--peak-copy-mib", "1", "--time-ms", "0"],
        ];
        foreach (var command in commands)
        {
            var (code, _, stderr) = Support.TomeProcess.Run(command);
            Assert.True(code == 0, $"{string.Join(' ', command)}: {stderr}");
            Assert.Contains("the CUDA device is emulated on the CPU; these timings say nothing about any GPU", stderr);
        }
    }

    [Fact]
    public void DevicesListsEachGpu()
    {
        Support.GpuRequirement.RequireDevice();
        var (exitCode, output, _) = Run("devices", "--json");
        Assert.Equal(0, exitCode);
        using var document = JsonDocument.Parse(output);
        var first = document.RootElement.GetProperty("devices")[0];
        Assert.StartsWith("sm_", first.GetProperty("arch").GetString());
        Assert.True(first.GetProperty("multiprocessors").GetInt32() > 0);
        Assert.Equal(CudaDriver.IsEmulated, first.GetProperty("emulated").GetBoolean());
    }

    [Fact]
    public void DevicesNamesTheEmulatedDevice()
    {
        Support.EmulatedDevice.Require();
        var (exitCode, output, _) = Run("devices");
        Assert.Equal(0, exitCode);
        Assert.Contains("emulated device: ToMe CUDA emulator", output);
        Assert.Contains("Emulated device 0: ToMe CUDA emulator (sm_90 on the CPU; a test device, not a GPU), sm_90", output);
        var (_, json, _) = Run("devices", "--json");
        using var document = JsonDocument.Parse(json);
        Assert.Contains("sm_90 on the CPU", document.RootElement.GetProperty("emulator").GetString());
        Assert.True(document.RootElement.GetProperty("devices")[0].GetProperty("emulated").GetBoolean());
    }

    [Fact]
    public void KernelsCompileReportsEveryKernelAsJson()
    {
        NvrtcRequirement.Require();
        var (exitCode, output, error) = Run("kernels", "compile", "--arch", "sm_86", "--json", "--no-cache");
        Assert.True(exitCode == 0, error);
        using var document = JsonDocument.Parse(output);
        Assert.True(document.RootElement.GetProperty("success").GetBoolean());
        var kernels = document.RootElement.GetProperty("kernels");
        Assert.Equal(KernelSourcesCount(), kernels.GetArrayLength());
        foreach (var kernel in kernels.EnumerateArray())
        {
            Assert.Equal("sm_86", kernel.GetProperty("arch").GetString());
            Assert.True(kernel.GetProperty("cubinBytes").GetInt32() > 0);
            Assert.True(kernel.GetProperty("functions")[0].GetProperty("registers").GetInt32() > 0);
        }
    }

    [Fact]
    public void KernelsCompileRefusesAnArchitectureNvrtcCannotTargetBeforeCompiling()
    {
        NvrtcRequirement.Require();
        var (exitCode, output, error) = Run("kernels", "compile", "--arch", "sm_86,sm_990", "--no-cache");
        Assert.Equal(2, exitCode);
        Assert.Contains("cannot target sm_990; it targets ", error);
        Assert.Contains("sm_86", error);
        Assert.DoesNotContain("failed", error);
        Assert.Equal("", output);

        // NVRTC targets sm_60, the kernels do not: refused for that reason, before any compiling.
        (exitCode, output, error) = Run("kernels", "compile", "--arch", "sm_86,sm_60", "--no-cache");
        Assert.Equal(2, exitCode);
        Assert.Equal("error: --arch sm_60: the engine's kernels need sm_70 (Volta) or newer", error.Trim());
        Assert.Equal("", output);
    }

    [Theory]
    [InlineData("foo", "")]
    [InlineData("sm86", "; did you mean sm_86?")]
    [InlineData("sm_86,compute_8x", "")]
    public void KernelsCompileRefusesAMalformedArchitectureWithOneLine(string arch, string hint)
    {
        // No NVRTC needed: the name is checked before anything is loaded or compiled.
        var (exitCode, output, error) = Run("kernels", "compile", "--arch", arch, "--no-cache");
        Assert.Equal(2, exitCode);
        Assert.Equal("", output);
        var bad = arch.Split(',')[^1];
        Assert.Equal($"error: --arch '{bad}' is not a CUDA architecture (expected sm_XY or compute_XY, e.g. sm_86){hint}", error.Trim());
    }

    [Fact]
    public void KernelsCompileRefusesAnArchitectureSpecificTargetOlderNvrtcCannotBuild()
    {
        NvrtcRequirement.Require();
        if (ToMe.Backends.Cuda.Kernels.KernelCompiler.NvrtcVersion().Major >= 12)
            Assert.Skip("this NVRTC builds sm_90a");
        var (exitCode, output, error) = Run("kernels", "compile", "--arch", "sm_90a", "--no-cache");
        Assert.Equal(2, exitCode);
        Assert.Equal("", output);
        Assert.StartsWith("error: NVRTC 11.", error);
        Assert.Contains("cannot target sm_90a; it targets ", error);
        Assert.Contains("need NVRTC 12.0 or later", error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Theory]
    [InlineData("")]
    [InlineData(",")]
    [InlineData(" , ")]
    public void KernelsCompileRefusesAnEmptyArchitectureList(string arch)
    {
        var (exitCode, output, error) = Run("kernels", "compile", "--arch", arch, "--no-cache");
        Assert.Equal(2, exitCode);
        Assert.Equal("", output);
        Assert.StartsWith("error: --arch is empty", error.Trim());
    }

    private static int KernelSourcesCount() => ToMe.Backends.Cuda.Kernels.KernelSources.Kernels.Count;
}
