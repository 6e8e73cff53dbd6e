using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cpu.CodeGen;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The generated AVX-512 GELU against <see cref="VectorMath.Gelu(Vector512{float})"/>, bit for bit (NaN only as NaN):
/// millions of values over the ranges where each part of the formula decides the result, whole tiles of every row
/// count with rows further apart than they are long, and the fc1 GEMM whose epilogue runs it.
/// </summary>
public unsafe class GeluJitKernelTests
{
    private const float Sentinel = -12345.5f;

    private static bool CanGenerate => GeluJitKernel.CpuSupports && (OperatingSystem.IsLinux() || OperatingSystem.IsWindows());

    private static void RequireJit() =>
        Assert.SkipUnless(GeluJitKernel.IsAvailable,
            GeluJitKernel.Disabled ? "TOME_GELU_JIT=0 turns the generated GELU off"
            : "this CPU/OS does not run AVX-512 (with zmm state enabled) on Linux or Windows x64");

    // Where it can run it must: a failure here means the GEMM epilogue fell back to the compiled GELU unnoticed.
    [Fact]
    public void GeneratedGeluIsUsedWhereAvx512Runs()
    {
        Assert.SkipUnless(CanGenerate, "this CPU/OS does not run AVX-512 (with zmm state enabled) on Linux or Windows x64");
        Assert.SkipWhen(GeluJitKernel.Disabled, "TOME_GELU_JIT=0 turns the generated GELU off");
        Assert.True(GeluJitKernel.IsAvailable, "AVX-512 runs here but the GELU code was not generated or not mapped executable");
    }

    // The Windows code cannot run here: its frame checked byte for byte (encodings as GNU as gives them): xmm6–15 saved
    // below rsp on entry and restored before the return, the arguments read from rcx, rdx, r8.
    [Fact]
    public void WindowsCodeKeepsTheRegistersItsConventionPreserves()
    {
        var table = stackalloc float[32];
        var windows = GeluJitKernel.Generate(windowsAbi: true, table);
        var systemV = GeluJitKernel.Generate(windowsAbi: false, table);
        static string Hex(ReadOnlySpan<byte> code) => Convert.ToHexString(code).ToLowerInvariant();
        Assert.Equal("4881eca0000000", Hex(windows.AsSpan(0, 7)));                     // sub rsp, 160
        Assert.Equal("62f17e087f3424", Hex(windows.AsSpan(7, 7)));                     // vmovdqu32 [rsp], xmm6
        Assert.Equal("62717e087f7c2409", Hex(windows.AsSpan(7 + 7 + 8 * 8, 8)));       // vmovdqu32 [rsp+144], xmm15
        Assert.Equal("488d014c8d0a4d8d10", Hex(windows.AsSpan(7 + 7 + 9 * 8, 9)));     // lea rax, [rcx]; lea r9, [rdx]; lea r10, [r8]
        Assert.Equal("62717e086f7c24094881c4a0000000c5f877c3", Hex(windows.AsSpan(windows.Length - 19)));
        Assert.Equal("488d074c8d0e4c8d12", Hex(systemV.AsSpan(0, 9)));                 // lea rax, [rdi]; lea r9, [rsi]; lea r10, [rdx]
        Assert.Equal("c5f877c3", Hex(systemV.AsSpan(systemV.Length - 4)));           // vzeroupper; ret
    }

    // The Windows code run here behind three moves that put the System V arguments where the Windows convention has them
    // (r8 ← rdx, rdx ← rsi, rcx ← rdi): its results and its stack frame (the return needs rsp restored) checked.
    [Fact]
    public void WindowsCodeRunsBehindAnArgumentShim()
    {
        Assert.SkipUnless(CanGenerate && OperatingSystem.IsLinux(), "needs AVX-512 and the System V convention (Linux x64)");
        var table = (float*)NativeMemory.AlignedAlloc(256, 64);
        try
        {
            GeluJitKernel.FillConstants(table);
            var shim = new X64Assembler();
            shim.Lea(Gpr.R8, new(Gpr.Rdx));
            shim.Lea(Gpr.Rdx, new(Gpr.Rsi));
            shim.Lea(Gpr.Rcx, new(Gpr.Rdi));
            using var memory = ExecutableMemory.TryCreate([.. shim.ToArray(), .. GeluJitKernel.Generate(windowsAbi: true, table)]);
            Assert.NotNull(memory);
            var run = (delegate* unmanaged<float*, nint, nint, void>)memory.Pointer;
            foreach (int rows in new[] { 12, 5, 3 })
            {
                const int ldc = 37;
                var x = Reference.Random(rows * ldc, rows, 8f);
                var y = x.ToArray();
                fixed (float* p = y)
                    run(p, ldc * sizeof(float), rows);
                for (int r = 0; r < rows; r++)
                    for (int half = 0; half < 2; half++)
                    {
                        var expected = VectorMath.Gelu(Vector512.Create(x.AsSpan(r * ldc + 16 * half, 16)));
                        for (int j = 0; j < 16; j++)
                            AssertSameBits(expected[j], y[r * ldc + 16 * half + j], x[r * ldc + 16 * half + j], $"Windows code, rows={rows}");
                    }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(table);
        }
    }

    private static void AssertSameBits(float expected, float actual, float x, string what)
    {
        if (float.IsNaN(expected))
            Assert.True(float.IsNaN(actual), $"{what}: GELU({x:R}) = {actual:R}, expected NaN");
        else
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                $"{what}: GELU({x:R}) = {actual:R} (0x{BitConverter.SingleToInt32Bits(actual):X8}), expected {expected:R} (0x{BitConverter.SingleToInt32Bits(expected):X8})");
    }

    // Every value of xs (a multiple of 16 of them) through the generated tile (12 rows × 32, contiguous) and VectorMath.Gelu.
    private static void CheckValues(float[] xs, string what)
    {
        const int tile = 12 * GeluJitKernel.Columns;
        var buffer = new float[tile];
        for (int start = 0; start < xs.Length; start += tile)
        {
            int count = Math.Min(tile, xs.Length - start);
            buffer.AsSpan().Clear();
            xs.AsSpan(start, count).CopyTo(buffer);
            fixed (float* p = buffer)
                GeluJitKernel.Run(p, GeluJitKernel.Columns, 12);
            for (int i = 0; i < count; i += 16)
            {
                var expected = VectorMath.Gelu(Vector512.Create(xs.AsSpan(start + i, 16)));
                for (int j = 0; j < 16; j++)
                    AssertSameBits(expected[j], buffer[i + j], xs[start + i + j], what);
            }
        }
    }

    [Theory]
    [InlineData("tiny", 1e-30f, 0f)]           // |x| < 1e-30: t = 1, erfc(0) and the sign's branch
    [InlineData("near 0.75", 0.1f, 0.75f)]     // around erf's series limit (unused here) and u ≈ 0.53
    [InlineData("near -0.75", 0.1f, -0.75f)]
    [InlineData("1..10", 4.5f, 5.5f)]
    [InlineData("-10..-1", 4.5f, -5.5f)]
    [InlineData("exp underflow", 100f, -113f)] // −u² + P(t) below ExpFloor from x ≈ −13.2: the clamp and the flush
    [InlineData("wide", 30f, 0f)]
    public void MatchesTheVectorGeluBitForBit(string range, float halfWidth, float center)
    {
        RequireJit();
        var rng = new Random(range.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        var xs = new float[1 << 20];
        for (int i = 0; i < xs.Length; i++)
            xs[i] = center + halfWidth * (float)(2 * rng.NextDouble() - 1);
        CheckValues(xs, range);
    }

    [Fact]
    public void MatchesTheVectorGeluOnRandomBitsAndSpecialValues()
    {
        RequireJit();
        var rng = new Random(77);
        var xs = new float[1 << 21];
        for (int i = 0; i < xs.Length; i++)
            xs[i] = BitConverter.Int32BitsToSingle(rng.Next() | (rng.Next(2) << 31)); // every exponent: denormals, NaNs, ±inf
        float[] specials =
        [
            0f, -0f, float.Epsilon, -float.Epsilon, 1e-45f, -1e-45f, 1.17549435e-38f, -1.17549435e-38f, 1e-30f, -1e-30f,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, -float.NaN, BitConverter.Int32BitsToSingle(0x7FA00001),
            float.MaxValue, float.MinValue, 0.75f, -0.75f, 1.0606601f, -1.0606601f, -13.2f, -13.3f, -13.25f, -88f, -1e5f,
            1e5f, 3e19f, -3e19f, 1f, -1f, 2f, -2f,
        ];
        specials.CopyTo(xs, 0);
        CheckValues(xs, "random bits");
    }

    // Whole tiles of 1 to 12 rows, rows further apart than 32 floats: the tile's values as the vector GELU gives them, the
    // padding between rows and everything around the tile untouched.
    [Theory]
    [InlineData(33)]
    [InlineData(37)]
    [InlineData(45)]
    [InlineData(769)]
    public void TilesOfEveryRowCountTouchOnlyTheirColumns(int ldc)
    {
        RequireJit();
        const int guard = 64;
        for (int rows = 1; rows <= 12; rows++)
        {
            var x = Reference.Random(rows * ldc, 1000 * ldc + rows, 6f);
            var buffer = new float[guard + rows * ldc + guard];
            buffer.AsSpan().Fill(Sentinel);
            x.CopyTo(buffer, guard);
            fixed (float* p = buffer)
                GeluJitKernel.Run(p + guard, ldc, rows);
            string what = $"rows={rows} ldc={ldc}";
            Reference.AssertUntouched(buffer.AsSpan(0, guard), Sentinel, what);
            Reference.AssertUntouched(buffer.AsSpan(guard + rows * ldc), Sentinel, what);
            for (int r = 0; r < rows; r++)
            {
                for (int half = 0; half < 2; half++)
                {
                    var expected = VectorMath.Gelu(Vector512.Create(x.AsSpan(r * ldc + 16 * half, 16)));
                    for (int j = 0; j < 16; j++)
                        AssertSameBits(expected[j], buffer[guard + r * ldc + 16 * half + j], x[r * ldc + 16 * half + j], what);
                }
                for (int j = GeluJitKernel.Columns; j < ldc; j++)
                    Assert.True(x[r * ldc + j] == buffer[guard + r * ldc + j], $"{what}: padding at row {r}, column {j} written");
            }
        }
    }

    // The fc1 GEMM with its GELU epilogue: bit for bit the Bias GEMM followed by the vector GELU (same kernel, same sums),
    // at the row counts of one image (197), a larger image (577), an odd batch (1025) and one or two rows, with N = 768
    // (ViT-Ti fc1, whole panels) and N = 200 (a narrow last panel).
    [Theory]
    [InlineData(1, 768)]
    [InlineData(2, 768)]
    [InlineData(197, 768)]
    [InlineData(577, 768)]
    [InlineData(1025, 768)]
    [InlineData(197, 200)]
    [InlineData(13, 200)]
    public void Fc1WithGeluIsTheBiasGemmThenTheVectorGelu(int m, int n)
    {
        Assert.SkipUnless(CpuGemm.IsSupported(SimdPath.Vector512), "Vector512 is not accelerated here");
        const int k = 192;
        var a = Reference.Random(m * k, m + n, 1.5f);
        var w = PackedWeight.Pack(Reference.Random(n * k, m + n + 1, 0.2f), n, k);
        var bias = Reference.Random(n, m + n + 2, 0.5f);
        var plain = new float[m * n];
        CpuGemm.Linear(a, m, w, bias, plain, GemmEpilogue.Bias, 2, SimdPath.Vector512);
        foreach (int threads in new[] { 1, 2 })
        {
            var fused = new float[m * n];
            CpuGemm.Linear(a, m, w, bias, fused, GemmEpilogue.BiasGelu, threads, SimdPath.Vector512);
            for (int i = 0; i < m * n; i += 16)
            {
                int count = Math.Min(16, m * n - i);
                var lanes = new float[16];
                plain.AsSpan(i, count).CopyTo(lanes);
                var expected = VectorMath.Gelu(Vector512.Create(lanes));
                for (int j = 0; j < count; j++)
                    AssertSameBits(expected[j], fused[i + j], plain[i + j], $"m={m} n={n} threads={threads} at {i + j}");
            }
            if ((long)m * n * k <= 40_000_000)
            {
                var (reference, magnitude) = Reference.Linear(a, Reference.Random(n * k, m + n + 1, 0.2f), bias, m, n, k);
                for (int i = 0; i < reference.Length; i++)
                {
                    reference[i] = Reference.Gelu(reference[i]);
                    magnitude[i] *= 1.2; // GELU is 1.13-Lipschitz
                }
                Reference.AssertClose(fused, reference, magnitude, k, $"m={m} n={n} threads={threads} vs float64");
            }
        }
    }
}
