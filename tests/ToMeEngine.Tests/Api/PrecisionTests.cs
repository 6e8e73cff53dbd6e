using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Model;
using ToMe.Tests.Cuda;
using ToMe.Tests.Support;

namespace ToMe.Tests.Api;

/// <summary>Precision as one concept: its names, which backend runs which, and the engine's choice of backend.</summary>
public class PrecisionTests
{
    [Fact]
    public void NamesRoundTripAndUnknownNamesListTheKnownOnes()
    {
        foreach (var precision in Enum.GetValues<Precision>())
            Assert.Equal(precision, PrecisionNames.Parse(precision.Name()));
        Assert.Equal(["fp32", "tf32", "bf16", "fp16", "int8", "auto"], PrecisionNames.All);
        Assert.Equal(Precision.Int8, PrecisionNames.Parse(" INT8 "));
        Assert.Equal(Precision.Float32, PrecisionNames.Parse("float32"));
        Assert.Equal(Precision.BFloat16, PrecisionNames.Parse("bfloat16"));
        var error = Assert.Throws<FormatException>(() => PrecisionNames.Parse("int4"));
        Assert.Equal("precision 'int4' is not one of fp32, tf32, bf16, fp16, int8, auto", error.Message);
    }

    [Fact]
    public void CpuRunsFp32AndInt8AndSendsHalfPrecisionsToCuda()
    {
        using var cpu = new CpuBackend(1);
        Assert.Equal(Precision.Float32, cpu.ResolvePrecision(Precision.Auto));
        Assert.Equal(Precision.Float32, cpu.ResolvePrecision(Precision.Float32));
        Assert.Equal(Precision.Int8, cpu.ResolvePrecision(Precision.Int8));
        foreach (var half in new[] { Precision.TensorFloat32, Precision.BFloat16, Precision.Float16 })
        {
            var error = Assert.Throws<NotSupportedException>(() => cpu.ResolvePrecision(half));
            Assert.Equal($"{half.Name()} needs the CUDA backend; the CPU backend runs fp32 and int8", error.Message);
            Assert.Throws<NotSupportedException>(() => cpu.PrepareLinear(new float[4], 2, 2, new float[2], half));
        }
    }

    [Fact]
    public void CpuPreparesInt8LayersOnlyWhenAsked()
    {
        using var cpu = new CpuBackend(1);
        using var fp32 = cpu.PrepareLinear(new float[12], 3, 4, new float[3]);
        using var int8 = cpu.PrepareLinear(new float[12], 3, 4, new float[3], Precision.Int8);
        Assert.Equal(Precision.Float32, fp32.Precision);
        Assert.Equal(Precision.Int8, int8.Precision);
        Assert.Equal((3, 4), (int8.OutFeatures, int8.InFeatures));
    }

    [Fact]
    public void Int8KeepsThePatchEmbeddingAndHeadInFloat32()
    {
        var config = Fixtures.Model("vit_p14_d3").Config;
        var layers = LinearLayer.All(config).ToList();
        Assert.Equal(2 + 4 * config.Depth, layers.Count);
        foreach (var (layer, _, _) in layers)
            Assert.Equal(layer.Kind is LinearKind.PatchEmbed or LinearKind.Head ? Precision.Float32 : Precision.Int8,
                layer.DefaultPrecision(Precision.Int8));
        Assert.All(layers, l => Assert.Equal(Precision.Float32, l.Layer.DefaultPrecision(Precision.Float32)));
    }

    [Fact]
    public void Int8EngineOnAutoBackendRunsOnTheCpu()
    {
        using var engine = ToMeEngine.Create(Fixtures.Model("vit_p14_d3"), new EngineOptions { Precision = Precision.Int8 });
        Assert.Equal("cpu", engine.BackendName);
        Assert.Equal(Precision.Int8, engine.Precision);
        using var fp32 = ToMeEngine.Create(Fixtures.Model("vit_p14_d3"), new EngineOptions { Backend = BackendKind.Cpu, Precision = Precision.Auto });
        Assert.Equal(Precision.Float32, fp32.Precision);
    }

    [Fact]
    public void HalfPrecisionOnTheCpuIsRefusedWithTheReason()
    {
        var options = new EngineOptions { Backend = BackendKind.Cpu, Precision = Precision.BFloat16 };
        var error = Assert.Throws<NotSupportedException>(() => ToMeEngine.Create(Fixtures.Model("vit_p14_d3"), options));
        Assert.StartsWith("bf16 needs the CUDA backend", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ToMeEngine.Create(Fixtures.Model("vit_p14_d3"), new EngineOptions { Precision = (Precision)42 }));
    }

    [Fact]
    public void CudaRefusesInt8AsCpuOnly()
    {
        using var gpu = BackendPair.CreateGpu(); // skips (or fails with TOME_REQUIRE_GPU=1) where CUDA is not usable
        var error = Assert.Throws<NotSupportedException>(() => gpu.ResolvePrecision(Precision.Int8));
        Assert.StartsWith("int8 is CPU-only", error.Message);
        foreach (var precision in new[] { Precision.Float32, Precision.TensorFloat32, Precision.Float16 })
            Assert.Equal(precision, gpu.ResolvePrecision(precision));
        // auto: bf16 where the tensor cores take it (sm_80+), fp16 on Volta/Turing, which refuse bf16 with the reason.
        bool ampere = gpu.Device.ComputeMajor >= 8;
        Assert.Equal(ampere ? Precision.BFloat16 : Precision.Float16, gpu.ResolvePrecision(Precision.Auto));
        if (ampere)
            Assert.Equal(Precision.BFloat16, gpu.ResolvePrecision(Precision.BFloat16));
        else
            Assert.StartsWith("bf16 needs tensor cores of sm_80", Assert.Throws<NotSupportedException>(() => gpu.ResolvePrecision(Precision.BFloat16)).Message);
    }
}
