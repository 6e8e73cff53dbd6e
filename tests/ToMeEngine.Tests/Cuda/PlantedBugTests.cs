using System.Diagnostics;
using ToMe.Backends.Checks;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// Classic GPU bugs, planted one at a time into a copy of kernels/ and built by the emulator's Makefile: each must make a
/// test that passes on the real kernels fail, by an error of the emulated device or by a wrong result.
/// </summary>
public sealed class PlantedBugTests(PlantedBugTests.Mutants mutants, ITestOutputHelper output) : IClassFixture<PlantedBugTests.Mutants>
{
    /// <summary>
    /// A bug: one textual change to one kernel file, the existing test that must catch it, and what its failure must say
    /// (the emulator's error, or the op check's "values differ" for a wrong result).
    /// </summary>
    public sealed record Bug(string Name, string File, string Find, string Replace, Action Check, string CaughtBy);

    public static readonly IReadOnlyList<Bug> Bugs =
    [
        new("dropped __syncthreads", "attention.cu", "        __syncthreads();\n\n#pragma unroll", "\n#pragma unroll",
            Op("attention B=3 T=197 H=3 D=64 sizes=random"), "values differ"),
        new("read past the end", "bipartite_match.cu", "d < dim; d += WARP_SIZE) squares", "d <= dim; d += WARP_SIZE) squares",
            Op("bipartite_match B=3 T=197 D=64 prefix=1"), "values differ"),
        new("shuffle under a partial-warp mask", "bipartite_match.cu", "__shfl_xor_sync(FULL_MASK, v, offset)", "__shfl_xor_sync(0x0000ffffu, v, offset)",
            Op("bipartite_match B=3 T=197 D=64 prefix=1"), "calls __shfl_xor_sync(mask 0x0000ffff)"),
        new("barrier in divergent code", "topr_sort.cu", "            __syncthreads();\n", "            if (threadIdx.x < blockDim.x / 2) __syncthreads();\n",
            Op("select_top_r B=3 ta=513 r=100 kept in order"), "wait at different barriers"),
        new("off-by-one tail", "merge_assigned.cu", "if (w >= (i64)batch * new_tokens) return;", "if (w > (i64)batch * new_tokens) return;",
            Op("merge_assigned B=3 T=197 C=64 used=98 T'=98"), "invalid memory access"),
        new("cp.async tile read before its wait", "flash_attention.cu", "        cp_async_wait<1>();", "        // (no wait)",
            () => new FlashAttentionTests().FlashMatchesCpuAttentionOnHalfInputs(false, 1, 197, 2, FlashAttentionTests.SizeMode.Random), "values outside"),
        new("V fragments loaded untransposed", "flash_attention.cu", "ldmatrix_x4_trans(vf,", "ldmatrix_x4(vf,",
            () => new FlashAttentionTests().FlashMatchesCpuAttentionOnHalfInputs(true, 1, 197, 2, FlashAttentionTests.SizeMode.Random), "values outside"),
        new("K/V buffer refilled while other warps read it", "flash_attention.cu", "        __syncthreads();   // tile j's buffers", "        //",
            () => new FlashAttentionTests().FlashMatchesCpuAttentionOnHalfInputs(false, 1, 577, 2, FlashAttentionTests.SizeMode.Random), "values outside"),
        new("P read back before the warp wrote it", "flash_attention.cu", "        __syncwarp();\n", "\n",
            () => new FlashAttentionTests().MatchesCpuAttentionOnHalfInputs(FlashAttentionTests.Path.M8n8k4, false, 1, 197, 2, 64,
                FlashAttentionTests.SizeMode.Random, ThreadOrder.Forward), "values outside"),
        new("a head left out of the metric", "flash_attention.cu", "hh < heads; ++hh", "hh < heads - 1; ++hh",
            () => new FlashAttentionTests().FlashMatchesCpuAttentionOnHalfInputs(true, 1, 65, 3, FlashAttentionTests.SizeMode.None), "key mean differs"),
    ];

    /// <summary>The first of the library's op checks whose name starts with <paramref name="name"/>, run on the device; a failed check throws its failure.</summary>
    private static Action Op(string name) => () =>
    {
        var check = OpChecks.All.First(c => c.Name.StartsWith(name, StringComparison.Ordinal));
        using var gpu = BackendPair.CreateGpu();
        var result = OpChecks.Run(check, gpu);
        if (!result.Passed)
            Assert.Fail($"{check.Name}: {result.Failure}");
    };

    public static TheoryData<string> BugNames() => [.. Bugs.Select(b => b.Name)];

    [Theory]
    [MemberData(nameof(BugNames))]
    public void PlantedBugIsCaught(string name)
    {
        var bug = Bugs.Single(b => b.Name == name);
        bug.Check();   // the real kernels pass
        using (EmulatedDevice.UseKernels(mutants.Directory(bug)))
        {
            var caught = Record.Exception(bug.Check);
            Assert.True(caught is not null, $"planted bug '{bug.Name}' in {bug.File} went unnoticed");
            Assert.True(caught.Message.Contains(bug.CaughtBy, StringComparison.Ordinal),
                $"planted bug '{bug.Name}' was expected to fail with '{bug.CaughtBy}', not: {caught.Message}");
            output.WriteLine($"{bug.Name} ({bug.File}): caught by {caught.GetType().Name}: {caught.Message.Split('\n')[0]}");
        }
    }

    /// <summary>
    /// The engine's Linear GEMM (row-major Y = X·Wᵀ as column-major Yᵀ = W^T·Xᵀ) with the transpose of W forgotten: on a
    /// square weight the call is valid, so only the result can tell.
    /// </summary>
    [Fact]
    public void WrongTransposeInAGemmCallIsCaught()
    {
        GpuRequirement.RequireDevice();
        using var context = Gpu.Context();
        using var stream = new CudaStream(context);
        using var blas = new CublasHandle(context, stream);
        const int rows = 37, features = 48;
        var x = Gpu.Random(rows * features, seed: 61);
        var w = Gpu.Random(features * features, seed: 62);
        var expected = CpuTwins.LinearBatched(x, w, 1, rows, features, features);
        using var dx = DeviceBuffer<float>.Allocate(context, x.Length);
        using var dw = DeviceBuffer<float>.Allocate(context, w.Length);
        using var dy = DeviceBuffer<float>.Allocate(context, rows * features);
        StreamCopy.Upload(stream, x, dx.Pointer);
        StreamCopy.Upload(stream, w, dw.Pointer);
        float[] Linear(CublasOperation transW)
        {
            blas.GemmStridedBatched(transW, CublasOperation.N, features, rows, features, 1f, dw.Pointer, CudaDataType.R32F, features, 0,
                dx.Pointer, CudaDataType.R32F, features, 0, 0f, dy.Pointer, CudaDataType.R32F, features, 0, 1);
            var y = new float[rows * features];
            StreamCopy.Download(stream, dy.Pointer, y.AsSpan());
            return y;
        }
        Gpu.AssertClose(expected, Linear(CublasOperation.T), 2e-5f, 1e-5f, "Linear with the right transpose");
        var caught = Record.Exception(() => Gpu.AssertClose(expected, Linear(CublasOperation.N), 2e-5f, 1e-5f, "Linear with W untransposed"));
        Assert.NotNull(caught);
        output.WriteLine($"wrong transpose: caught by {caught.GetType().Name}: {caught.Message.Split('\n')[0]}");
    }

    /// <summary>Every planted bug's kernel library, built once for the class into a temporary kernel directory each.</summary>
    public sealed class Mutants : IDisposable
    {
        private readonly string root = Path.Combine(Path.GetTempPath(), "tome-planted-" + Guid.NewGuid().ToString("N"));
        private readonly Lazy<IReadOnlyDictionary<string, string>> built;

        public Mutants() => built = new(Build);

        public string Directory(Bug bug) => built.Value[bug.Name];

        private IReadOnlyDictionary<string, string> Build()
        {
            EmulatedDevice.Require();
            var emulator = Path.GetFullPath(Path.Combine(EmulatedDevice.BuildDirectory!, ".."));
            var kernels = Path.GetFullPath(Path.Combine(emulator, "..", "kernels"));
            var directories = new Dictionary<string, string>();
            var builds = new List<(Bug Bug, Process Make)>();
            foreach (var (bug, index) in Bugs.Select((b, i) => (b, i)))
            {
                var dir = Path.Combine(root, index.ToString(System.Globalization.CultureInfo.InvariantCulture));
                var source = Path.Combine(dir, "kernels");
                var output = Path.Combine(dir, "out");
                System.IO.Directory.CreateDirectory(source);
                System.IO.Directory.CreateDirectory(output);
                foreach (var file in System.IO.Directory.GetFiles(kernels))
                    File.Copy(file, Path.Combine(source, Path.GetFileName(file)));
                var text = File.ReadAllText(Path.Combine(source, bug.File));
                Assert.True(text.Contains(bug.Find, StringComparison.Ordinal), $"{bug.File} no longer contains the text '{bug.Name}' plants a bug in");
                File.WriteAllText(Path.Combine(source, bug.File), text.Replace(bug.Find, bug.Replace, StringComparison.Ordinal));
                // The other kernel libraries are the real ones.
                foreach (var library in System.IO.Directory.GetFiles(Path.Combine(EmulatedDevice.BuildDirectory!, "kernels"), "*.so"))
                    if (Path.GetFileName(library) != Path.ChangeExtension(bug.File, ".so"))
                        File.CreateSymbolicLink(Path.Combine(output, Path.GetFileName(library)), library);
                var target = Path.Combine(output, Path.ChangeExtension(bug.File, ".so"));
                var info = new ProcessStartInfo("make") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var arg in new[] { "-s", "-C", emulator, $"KERNELS={source}", $"KERNEL_OUT={output}", $"GEN={Path.Combine(dir, "gen")}", "OPT=-O1", target })
                    info.ArgumentList.Add(arg);
                builds.Add((bug, Process.Start(info)!));
                directories[bug.Name] = output;
            }
            foreach (var (bug, make) in builds)
            {
                var stderr = make.StandardError.ReadToEndAsync();
                make.StandardOutput.ReadToEnd();
                make.WaitForExit();
                Assert.True(make.ExitCode == 0, $"building planted bug '{bug.Name}' failed:\n{stderr.Result}");
            }
            return directories;
        }

        public void Dispose()
        {
            try
            {
                System.IO.Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
