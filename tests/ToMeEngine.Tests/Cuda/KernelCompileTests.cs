using System.Text.RegularExpressions;
using ToMe.Backends.Cuda.Kernels;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>Every kernel file compiles with NVRTC for each target architecture, through the engine's own path; no GPU needed.</summary>
public partial class KernelCompileTests
{
    public static TheoryData<string> Archs => new("sm_70", "sm_86", "sm_90");

    [Theory]
    [MemberData(nameof(Archs))]
    public void EveryKernelCompilesToCubin(string arch)
    {
        NvrtcRequirement.Require();
        NvrtcRequirement.RequireArch(arch);
        var compiler = new KernelCompiler(cache: null);
        var results = KernelBuildReport.CompileAll(compiler, [arch]);

        Assert.NotEmpty(results);
        var failures = results.Where(r => !r.Success).Select(r => $"{r.FileName} ({r.Arch}):\n{r.Error}").ToList();
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
        Assert.Equal(KernelSources.Kernels.Count, compiler.CompilationCount);
        foreach (var result in results)
        {
            Assert.True(result.CubinBytes > 0, $"{result.FileName}: empty CUBIN");
            Assert.NotEmpty(result.Functions);
            Assert.All(result.Functions, f => Assert.Equal(arch, f.Arch));
            Assert.All(result.Functions, f => Assert.True(f.Registers > 0, $"{f.Function}: no register count parsed"));
        }
    }

    [Fact]
    public void EveryKernelFileIsEmbeddedWithHeaderCommentAndExternEntryPoint()
    {
        var onDisk = Directory.GetFiles(RepoKernelsDirectory(), "*.cu").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(onDisk, KernelSources.Kernels.Select(k => k.FileName).ToList());
        Assert.Contains(KernelSources.Headers, h => h.FileName == "common.cuh");
        foreach (var kernel in KernelSources.Kernels)
        {
            Assert.StartsWith($"// {kernel.FileName}:", kernel.Text);
            Assert.Contains("extern \"C\" __global__", kernel.Text);
            Assert.Contains("// Launch:", kernel.Text);
        }
    }

    [Fact]
    public void KernelsIncludeOnlyTheirOwnHeaders()
    {
        var own = KernelSources.Headers.Select(h => h.FileName).ToHashSet();
        foreach (var file in KernelSources.Kernels.Concat(KernelSources.Headers))
        {
            foreach (Match include in IncludeRegex().Matches(file.Text))
                Assert.True(own.Contains(include.Groups[1].Value), $"{file.FileName} includes {include.Groups[1].Value}; kernels may include only kernels/*.cuh");
        }
    }

    [Fact]
    public void CompileErrorCarriesFileNameAndLog()
    {
        NvrtcRequirement.Require();
        var broken = new KernelSource("broken_kernel.cu", "#include \"common.cuh\"\nextern \"C\" __global__ void broken(float* x) { x[0] = not_declared_anywhere; }\n");
        var error = Assert.Throws<ToMe.Backends.Cuda.Native.KernelCompileException>(() =>
            new KernelCompiler(cache: null).Compile(broken, new KernelCompileOptions("sm_86")));
        Assert.Equal("broken_kernel.cu", error.FileName);
        Assert.Contains("not_declared_anywhere", error.Log);
        Assert.Contains("broken_kernel.cu", error.Message);
        Assert.Contains("not_declared_anywhere", error.Message);
        Assert.Contains("nvrtcCompileProgram", error.Expression);
    }

    [Fact]
    public void ArchSpecificTargetOnlyWithNvrtc12()
    {
        NvrtcRequirement.Require();
        var expected = KernelCompiler.NvrtcVersion().Major >= 12 ? "sm_90a" : "sm_90";
        Assert.Equal(expected, KernelCompiler.ArchFor(9, 0, archSpecific: true));
        Assert.Equal("sm_90", KernelCompiler.ArchFor(9, 0));
        Assert.Equal("sm_86", KernelCompiler.ArchFor(8, 6, archSpecific: true));
    }

    [Fact]
    public void LineInfoIsAnOption()
    {
        Assert.Contains("-lineinfo", new KernelCompileOptions("sm_86", LineInfo: true).NvrtcOptions());
        Assert.DoesNotContain("-lineinfo", new KernelCompileOptions("sm_86").NvrtcOptions());
        Assert.Contains("--ptxas-options=-v", new KernelCompileOptions("sm_86").NvrtcOptions());
    }

    [Fact]
    public void PtxForVirtualArchitecture()
    {
        NvrtcRequirement.Require();
        var ptx = new KernelCompiler(cache: null).CompilePtx(KernelSources.Get("residual_add.cu"), "compute_70");
        Assert.Contains(".entry residual_add_f32", ptx);
    }

    internal static string RepoKernelsDirectory() => Path.Combine(RepoData.CheckoutRoot, "kernels");

    [GeneratedRegex(@"^\s*#\s*include\s*[<""]([^>""]+)[>""]", RegexOptions.Multiline)]
    private static partial Regex IncludeRegex();
}

/// <summary>common.cuh's helpers are inlined only where used, so a probe kernel uses every one of them on every architecture.</summary>
public class CommonHeaderTests
{
    private static readonly KernelSource Probe = new("common_probe.cu", """
        #include "common.cuh"
        extern "C" __global__ void common_probe(const float* in, half_t* h, bf16_t* b, float* out, int n)
        {
            const int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            const float x = in[i];
            h[i] = float_to_half(x);
            b[i] = float_to_bf16(x);
            half_t hh = from_float<half_t>(x);
            bf16_t bb = from_float<bf16_t>(x);
            float y = to_float(h[i]) + to_float(b[i]) + half_to_float(hh) + bf16_to_float(bb) + to_float(from_float<float>(x));
            y += warp_sum(x) + warp_max(x) + gelu_erf(x) + (float)ceil_div(n, 32) + (is_aligned16(in) ? 1.0f : 0.0f) + fmaxf(neg_infinity(), x);
            out[i] = as_float(as_bits(y));
        }
        """);

    [Theory]
    [InlineData("sm_70")]
    [InlineData("sm_75")]
    [InlineData("sm_80")]
    [InlineData("sm_86")]
    [InlineData("sm_90")]
    public void EveryHelperCompiles(string arch)
    {
        NvrtcRequirement.Require();
        NvrtcRequirement.RequireArch(arch);
        var compiled = new KernelCompiler(cache: null).Compile(Probe, new KernelCompileOptions(arch));
        Assert.Equal("common_probe", Assert.Single(compiled.Functions).Function);
    }

    [Fact]
    public void Bf16RoundingUsesTheInstructionFromSm80AndBitsBefore()
    {
        NvrtcRequirement.Require();
        var compiler = new KernelCompiler(cache: null);
        Assert.Contains("cvt.rn.bf16.f32", compiler.CompilePtx(Probe, "compute_80"));
        NvrtcRequirement.RequireArch("sm_70");
        var sm70 = compiler.CompilePtx(Probe, "compute_70");
        Assert.DoesNotContain("cvt.rn.bf16.f32", sm70);
        Assert.Contains("cvt.rn.f16.f32", sm70);
    }
}
