using System.Runtime.InteropServices;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cpu.CodeGen;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The run-time generated 512-bit VNNI kernel: its raw int32 sums against a scalar twin (with sentinels around the
/// output), the GEMM through it against the compiled kernels, and a whole int8 forward with it and without it.
/// </summary>
public unsafe class Int8JitKernelTests
{
    private const int Sentinel = unchecked((int)0xDEADBEEF);
    private const int Guard = 64;

    private static void RequireJit() =>
        Assert.SkipUnless(Int8JitKernels.IsAvailable,
            Int8JitKernels.Disabled ? "TOME_INT8_JIT=0 turns the generated kernel off"
            : "this CPU/OS does not run 512-bit VNNI (CPUID AVX512_VNNI with AVX-512 state enabled) on Linux or Windows x64");

    [Theory]
    [InlineData(1, 1), InlineData(2, 1), InlineData(3, 2), InlineData(47, 1), InlineData(48, 2), InlineData(193, 2)]
    [InlineData(768, 1), InlineData(768, 2), InlineData(0, 2)]
    public void RawSumsMatchTheScalarTwin(int kq, int panels) => CheckRawSums(kq, panels, Int8JitKernels.Mr);

    // The entry points for a micro-panel's first rows only (a row block's last, short micro-panel): those rows' sums, and
    // nothing of the rows after them written.
    [Theory]
    [InlineData(1, 1, 1), InlineData(2, 2, 2), InlineData(3, 47, 1), InlineData(4, 48, 2), InlineData(5, 192, 2)]
    [InlineData(5, 193, 1), InlineData(6, 3, 2), InlineData(7, 768, 2), InlineData(7, 0, 1)]
    public void RawSumsOfTheFirstRowsMatchTheScalarTwin(int rows, int kq, int panels) => CheckRawSums(kq, panels, rows);

    // Each with and without lines to prefetch (fewer than the k-quads, so the kernel passes the range's end): a cache hint
    // that leaves the sums, and rbx and rbp, which the kernel borrows for it, as they were.
    private static void CheckRawSums(int kq, int panels, int rowCount)
    {
        CheckRawSums(kq, panels, rowCount, prefetch: false);
        CheckRawSums(kq, panels, rowCount, prefetch: true);
    }

    private static void CheckRawSums(int kq, int panels, int rowCount, bool prefetch)
    {
        RequireJit();
        var rng = new Random(kq * 10 + panels + 1000 * (Int8JitKernels.Mr - rowCount));
        int lda = 4 * kq + 12; // rows further apart than they are long: the kernel reads only its 4·kq bytes
        var a = new byte[Int8JitKernels.Mr * lda + 4];
        rng.NextBytes(a);
        long panelStride = (long)kq * 64 + 128; // not the packed stride: the kernel must use the one it is given
        var b = new sbyte[panels * panelStride + 4];
        rng.NextBytes(MemoryMarshal.AsBytes(b.AsSpan()));
        // u8 extremes against s8 extremes in the first k-quad: 255·(−128)·4 and 255·127·4 per lane.
        a.AsSpan(0, Math.Min(4, 4 * kq)).Fill(255);
        var sums = new int[Guard + Int8JitKernels.Mr * Int8JitKernels.OutStride + Guard];
        sums.AsSpan().Fill(Sentinel);
        fixed (byte* pa = a)
        fixed (sbyte* pb = b)
        fixed (int* ps = sums)
            Int8JitKernels.Run(panels, kq, pa, lda, pb, panelStride, ps + Guard, rowCount,
                prefetch ? (byte*)pb : null, prefetch ? (byte*)pb + kq / 2 * 64 : null);

        for (int r = 0; r < Int8JitKernels.Mr; r++)
            for (int col = 0; col < Int8JitKernels.OutStride; col++)
            {
                int actual = sums[Guard + r * Int8JitKernels.OutStride + col];
                int p = col / 16, j = col % 16;
                if (p >= panels || r >= rowCount)
                {
                    Assert.True(actual == Sentinel, $"kq={kq} panels={panels} rows={rowCount}: row {r} column {col} past the panels or rows was written");
                    continue;
                }
                long expected = 0;
                for (int q = 0; q < kq; q++)
                    for (int t = 0; t < 4; t++)
                        expected += a[r * lda + 4 * q + t] * b[p * panelStride + q * 64 + j * 4 + t];
                if (actual != expected)
                    Assert.Fail($"kq={kq} panels={panels} rows={rowCount}: row {r} column {col} is {actual}, expected {expected}");
            }
        Assert.All(sums.AsSpan(0, Guard).ToArray(), v => Assert.Equal(Sentinel, v));
        Assert.All(sums.AsSpan(sums.Length - Guard).ToArray(), v => Assert.Equal(Sentinel, v));
    }

    [Fact]
    public void GemmSumsAreBitIdenticalToTheCompiledKernels()
    {
        RequireJit();
        var others = new[] { Int8Path.AvxVnni, Int8Path.Scalar }.Where(Int8Gemm.IsSupported).ToArray();
        int seed = 900;
        // M = 1, 2 and odd; N with an odd panel count and a column tail; K with a k-quad tail.
        foreach (var (m, n, k) in new[] { (1, 16, 4), (2, 17, 5), (9, 33, 192), (13, 1000, 190), (197, 48, 768), (3, 2304, 64), (31, 31, 3071) })
        {
            var rng = new Random(seed++);
            var a = new byte[m * k];
            rng.NextBytes(a);
            var w = Int8Weight.Quantize(Reference.Random(n * k, seed++), n, k, default);
            foreach (int threads in new[] { 1, 2 })
            {
                var generated = Int8Gemm.IntegerProduct(a, m, w, Int8Path.Avx512Vnni, threads);
                foreach (var other in others)
                    Assert.True(generated.AsSpan().SequenceEqual(Int8Gemm.IntegerProduct(a, m, w, other, threads)),
                        $"m={m} n={n} k={k} threads={threads}: the generated kernel's sums differ from {other}'s");
            }
        }
    }

    [Theory]
    [InlineData(0), InlineData(13)]
    public void ForwardLogitsAreIdenticalWithAndWithoutTheGeneratedKernel(int r)
    {
        RequireJit();
        var weights = Fixtures.Model("vit_p14_d3");
        var config = weights.Config;
        int per = 3 * config.ImageSize * config.ImageSize;
        var images = Reference.Random(5 * per, 41 + r);
        var options = new ForwardOptions { Schedule = MergeSchedule.Constant(r) };
        ForwardResult Run(Int8Path path)
        {
            using var backend = new CpuBackend(2, path);
            using var pass = new ForwardPass(backend, weights, Precision.Int8);
            return pass.Run(images, 5, options);
        }
        var generated = Run(Int8Path.Avx512Vnni);
        foreach (var other in new[] { Int8Path.AvxVnni, Int8Path.Avx512BW, Int8Path.Scalar }.Where(Int8Gemm.IsSupported))
            Assert.True(generated.Logits.AsSpan().SequenceEqual(Run(other).Logits), $"r={r}: logits differ from {other}'s");
    }

    [Fact]
    public void TomeInt8JitZeroTurnsItOff()
    {
        RequireJit();
        string[] args = ["info", "--model", Fixtures.ModelPath("vit_p14_d3"), "--precision", "int8"];
        var (code, stdout, stderr) = TomeProcess.Run(args);
        Assert.True(code == 0, stderr);
        Assert.Contains("integer kernel Avx512Vnni (generated at run time", stdout);

        (code, stdout, stderr) = TomeProcess.Run(new Dictionary<string, string?> { ["TOME_INT8_JIT"] = "0" }, args);
        Assert.True(code == 0, stderr);
        Assert.Contains("integer kernel ", stdout);
        Assert.DoesNotContain("Avx512Vnni", stdout);
    }

    [Fact]
    public void GeneratedCodeFollowsEachCallingConvention()
    {
        // The one argument arrives in rdi (System V) or rcx (Windows); both keep it on the stack and load from it, and
        // restore rbx and rbp (callee-saved on both) before returning: pop rbp / pop rbx / pop r10 after the loop.
        var systemV = Int8JitKernels.Generate(2, windowsAbi: false);
        var windows = Int8JitKernels.Generate(2, windowsAbi: true);
        Assert.Equal(0x57, systemV[0]); // push rdi
        Assert.Equal(0x51, windows[0]); // push rcx
        // push rbx / push rbp (saved on both conventions), then the prefetch range from the argument block
        Assert.Equal(new byte[] { 0x53, 0x55, 0x48, 0x8b, 0x5f, 0x30, 0x48, 0x8b, 0x6f, 0x38 }, systemV[1..11]);
        Assert.Equal(new byte[] { 0x53, 0x55, 0x48, 0x8b, 0x59, 0x30, 0x48, 0x8b, 0x69, 0x38 }, windows[1..11]);
        Assert.Equal(new byte[] { 0x48, 0x8b, 0x07 }, systemV[11..14]); // mov rax, [rdi]
        Assert.Equal(new byte[] { 0x48, 0x8b, 0x01 }, windows[11..14]); // mov rax, [rcx]
        Assert.Equal(0xC3, systemV[^1]);
        foreach (var code in new[] { systemV, windows })
        {
            int pops = Convert.ToHexString(code).IndexOf("5D5B415A", StringComparison.Ordinal);
            Assert.True(pops > 0 && pops % 2 == 0, "rbp, rbx and the argument pointer are popped in reverse order of their pushes");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8JitKernels.Generate(3, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8JitKernels.Generate(2, false, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8JitKernels.Generate(2, false, Int8JitKernels.Mr + 1));
    }

    [Fact]
    public void ExecutableMemoryIsReleasedOnce()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsWindows(), "executable pages are mapped on Linux and Windows only");
        var memory = ExecutableMemory.TryCreate([0xC3]);
        Assert.NotNull(memory);
        var ret = (delegate* unmanaged<void>)memory.Pointer;
        ret(); // a bare ret: the pages are executable
        memory.Dispose();
        memory.Dispose();
        Assert.Throws<ObjectDisposedException>(() => (nint)memory.Pointer);
    }
}
