using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The int8 Linear against an exact integer reference: the int32 sums bit for bit on every kernel family, the
/// dequantized result within float rounding of the documented formula, every family giving the same floats.
/// </summary>
public class Int8GemmTests
{
    private const int Guard = 40;
    private const float Sentinel = -12345.5f;

    // Theory data by name: Int8Path is internal and cannot appear in a public test signature.
    public static TheoryData<string> Paths() => new(Enum.GetNames<Int8Path>());

    // (m, n, k): tails in every dimension (k not a multiple of 4, n not of 16, m not of any MR) plus ViT shapes.
    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (2, 3, 5), (7, 17, 64), (1, 1000, 192), (13, 33, 300), (197, 192, 192), (198, 576, 64),
        (7, 768, 3072), (577, 40, 33), (1025, 16, 4), (30, 48, 40), (3, 16, 7), (96, 32, 192), (97, 31, 190),
    ];

    internal static Int8Path Require(string name)
    {
        var path = Enum.Parse<Int8Path>(name);
        Assert.SkipUnless(Int8Gemm.IsSupported(path), $"{path} does not run on this machine");
        return path;
    }

    /// <summary>The weight's levels as Int8Weight stores them, row by row: [n, k].</summary>
    private static sbyte[] Levels(float[] w, int n, int k)
    {
        var q = new sbyte[n * k];
        for (int o = 0; o < n; o++)
            Int8Weight.QuantizeRow(w.AsSpan(o * k, k), q.AsSpan(o * k, k));
        return q;
    }

    private static long[] IntegerReference(byte[] a, sbyte[] q, int m, int n, int k)
    {
        var c = new long[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                long s = 0;
                for (int p = 0; p < k; p++)
                    s += a[i * k + p] * q[j * k + p];
                c[i * n + j] = s;
            }
        return c;
    }

    private static byte[] RandomLevels(int length, int seed)
    {
        var rng = new Random(seed);
        var v = new byte[length];
        rng.NextBytes(v);
        return v;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void IntegerSumsAreExactOnAwkwardShapes(string pathName)
    {
        var path = Require(pathName);
        int seed = 1;
        foreach (var (m, n, k) in Shapes)
        {
            var a = RandomLevels(m * k, seed++);
            var w = Reference.Random(n * k, seed++);
            var expected = IntegerReference(a, Levels(w, n, k), m, n, k);
            foreach (int threads in new[] { 1, 2 })
            {
                var actual = Int8Gemm.IntegerProduct(a, m, Int8Weight.Quantize(w, n, k, default), path, threads);
                for (int i = 0; i < expected.Length; i++)
                    if (actual[i] != expected[i])
                        Assert.Fail($"{path} m={m} n={n} k={k} threads={threads}: sum {i} is {actual[i]}, expected {expected[i]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void ExtremeOperandsDoNotSaturate(string pathName)
    {
        // 255 · ±127 everywhere: a pair of such products overflows int16, which VPMADDUBSW would clamp.
        var path = Require(pathName);
        int m = 9, n = 35, k = 4099;
        var a = new byte[m * k];
        Array.Fill(a, (byte)255);
        a[3 * k + 17] = 0;
        var w = new float[n * k];
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++)
                w[j * k + p] = j % 3 == 0 ? 1f : j % 3 == 1 ? -1f : (p % 2 == 0 ? 1f : -1f);
        var expected = IntegerReference(a, Levels(w, n, k), m, n, k);
        Assert.Equal(255L * 127 * k, expected[0]);
        var actual = Int8Gemm.IntegerProduct(a, m, Int8Weight.Quantize(w, n, k, default), path, 2);
        Assert.Equal(expected, actual.Select(v => (long)v));
    }

    /// <summary>
    /// The documented formula from the test's own quantization of A: per row range [min(0, min), max(0, max)] over
    /// 255 levels, z = round(−min/s), q = clamp(round(x·(1/s)) + z, 0, 255); then (Σ a·q − z·Σq)·s_r·s_c + bias in double.
    /// </summary>
    private static (double[] Value, double[] Bound) DequantizedReference(float[] x, int lda, float[] w, float[] bias, int m, int n, int k)
    {
        var q = Levels(w, n, k);
        var scales = new double[n];
        var columnSums = new long[n];
        for (int j = 0; j < n; j++)
        {
            float max = 0;
            for (int p = 0; p < k; p++)
            {
                max = Math.Max(max, Math.Abs(w[j * k + p]));
                columnSums[j] += q[j * k + p];
            }
            scales[j] = max == 0 ? 1 : max / 127f;
        }
        var value = new double[m * n];
        var bound = new double[m * n];
        var levels = new byte[k];
        for (int i = 0; i < m; i++)
        {
            var row = x.AsSpan(i * lda, k);
            float lo = 0, hi = 0;
            foreach (var v in row)
            {
                lo = Math.Min(lo, v);
                hi = Math.Max(hi, v);
            }
            float s = hi - lo < 1e-30f ? 1f : (hi - lo) / 255f;
            int z = hi - lo < 1e-30f ? 0 : Math.Clamp((int)MathF.Round(-lo / s), 0, 255);
            float inv = 1f / s;
            for (int p = 0; p < k; p++)
                levels[p] = (byte)Math.Clamp((int)MathF.Round(row[p] * inv) + z, 0, 255);
            for (int j = 0; j < n; j++)
            {
                long sum = 0;
                for (int p = 0; p < k; p++)
                    sum += levels[p] * q[j * k + p];
                double product = (sum - (long)z * columnSums[j]) * (double)s * (float)scales[j];
                value[i * n + j] = product + bias[j];
                // int → float (|sum| may pass 2^24), s_r·s_c and the fma each round once.
                bound[i * n + j] = 4 * 6e-8 * (Math.Abs(product) + Math.Abs(bias[j])) + 1e-30;
            }
        }
        return (value, bound);
    }

    private static float[] Guarded(int length, float[]? init = null)
    {
        var buffer = new float[length + 2 * Guard];
        buffer.AsSpan().Fill(Sentinel);
        init?.CopyTo(buffer, Guard);
        return buffer;
    }

    /// <summary>Activations with the rows quantization must handle: random, one-signed, all zero, constant, one spike.</summary>
    private static float[] Activations(int m, int lda, int seed)
    {
        var x = Reference.Random(m * lda, seed, 3f);
        for (int i = 0; i < m; i++)
        {
            var row = x.AsSpan(i * lda, lda);
            switch (i % 6)
            {
                case 1: foreach (ref var v in row) v = Math.Abs(v) - 0.17f; break; // a GELU output
                case 2: row.Clear(); break;
                case 3: row.Fill(-0.75f); break;
                case 4: row[i % row.Length] = 40f; break;
            }
        }
        return x;
    }

    // MicroRows sizes the edge and test tiles and pads the quantized rows; a kernel writing more rows would overrun them.
    [Theory]
    [MemberData(nameof(Paths))]
    public void EachKernelWritesExactlyItsMicroRows(string pathName)
    {
        var path = Require(pathName);
        Assert.Equal(Int8Gemm.MicroRows(path), Int8Gemm.KernelRows(path));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void LinearMatchesDequantizedReference(string pathName)
    {
        var path = Require(pathName);
        int seed = 50;
        foreach (var (m, n, k) in Shapes.Where(s => (long)s.M * s.N * s.K < 40_000_000))
            foreach (var epilogue in new[] { GemmEpilogue.Bias, GemmEpilogue.BiasGelu, GemmEpilogue.Accumulate, GemmEpilogue.None })
                Check(path, m, n, k, lda: k, ldc: n, epilogue, seed++);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void StridedRowsReadAndWriteOnlyTheirColumns(string pathName)
    {
        var path = Require(pathName);
        Check(path, 3, 70, 40, lda: 5 * 40, ldc: 75, GemmEpilogue.Bias, 300);
        Check(path, 13, 33, 21, lda: 29, ldc: 40, GemmEpilogue.Accumulate, 301);
    }

    private static void Check(Int8Path path, int m, int n, int k, int lda, int ldc, GemmEpilogue epilogue, int seed)
    {
        var x = Activations(m, lda, seed);
        var w = Reference.Random(n * k, seed + 1);
        var bias = Reference.Random(n, seed + 2, 0.5f);
        var c0 = Reference.Random(m * ldc, seed + 3, 2f);
        var (expected, bound) = DequantizedReference(x, lda, w, epilogue == GemmEpilogue.None ? new float[n] : bias, m, n, k);
        var c = Guarded(m * ldc, c0);
        Int8Gemm.Linear(x, lda, m, Int8Weight.Quantize(w, n, k, bias), c.AsSpan(Guard, m * ldc), ldc, epilogue, 2, path);

        string what = $"{path} {epilogue} m={m} n={n} k={k} lda={lda} ldc={ldc}";
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++)
            {
                float actual = c[Guard + i * ldc + j];
                if (j >= n)
                {
                    Assert.True(actual == c0[i * ldc + j], $"{what}: padding column ({i}, {j}) was overwritten");
                    continue;
                }
                double e = expected[i * n + j], tol = bound[i * n + j];
                if (epilogue == GemmEpilogue.Accumulate)
                {
                    e += c0[i * ldc + j];
                    tol += 6e-8 * Math.Abs(e);
                }
                else if (epilogue == GemmEpilogue.BiasGelu)
                {
                    // GELU is 1.13-Lipschitz; the float GELU adds its own few 1e-7.
                    e = Reference.Gelu(e);
                    tol = 1.2 * tol + 1e-6 * Math.Abs(e) + 1e-7;
                }
                if (!(Math.Abs(actual - e) <= tol))
                    Assert.Fail($"{what}: ({i}, {j}) is {actual:R}, expected {e:R} (tolerance {tol:G3})");
            }
        Reference.AssertUntouched(c.AsSpan(0, Guard), Sentinel, what);
        Reference.AssertUntouched(c.AsSpan(Guard + m * ldc), Sentinel, what);
    }

    [Fact]
    public void EveryPathAndThreadCountGivesTheSameFloats()
    {
        var paths = Enum.GetValues<Int8Path>().Where(Int8Gemm.IsSupported).ToArray();
        int seed = 400;
        foreach (var (m, n, k) in new[] { (197, 192, 192), (61, 1000, 64), (7, 40, 770) })
            foreach (var epilogue in new[] { GemmEpilogue.Bias, GemmEpilogue.BiasGelu, GemmEpilogue.Accumulate })
            {
                var x = Activations(m, k, seed++);
                var weight = Int8Weight.Quantize(Reference.Random(n * k, seed++), n, k, Reference.Random(n, seed++));
                var c0 = Reference.Random(m * n, seed++);
                float[]? first = null;
                foreach (var path in paths)
                    foreach (int threads in new[] { 1, 2, 0 })
                    {
                        var c = c0.ToArray();
                        Int8Gemm.Linear(x, k, m, weight, c, n, epilogue, threads, path);
                        first ??= c;
                        for (int i = 0; i < c.Length; i++)
                            if (BitConverter.SingleToInt32Bits(c[i]) != BitConverter.SingleToInt32Bits(first[i]))
                                Assert.Fail($"{path} threads={threads} {epilogue} m={m} n={n} k={k}: element {i} is {c[i]:R}, {paths[0]} gave {first[i]:R}");
                    }
            }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void FusedMlpEqualsTheTwoLayersBitForBit(string pathName)
    {
        var path = Require(pathName);
        int seed = 500;
        // (m, in, hidden, out): one row, blocks with tails, a hidden width that is not a multiple of 16 or 4, ViT-B's MLP.
        foreach (var (m, c, h, n) in new[] { (1, 8, 40, 8), (197, 64, 256, 64), (577, 33, 130, 21), (1025, 16, 48, 16), (50, 192, 3072, 192) })
        {
            var x = Activations(m, c, seed++);
            var fc1 = Int8Weight.Quantize(Reference.Random(h * c, seed++), h, c, Reference.Random(h, seed++));
            var fc2 = Int8Weight.Quantize(Reference.Random(n * h, seed++, 0.1f), n, h, Reference.Random(n, seed++));
            var y0 = Reference.Random(m * n, seed++);
            var hidden = new float[m * h];
            var expected = y0.ToArray();
            Int8Gemm.Linear(x, c, m, fc1, hidden, h, GemmEpilogue.BiasGelu, 1, path);
            Int8Gemm.Linear(hidden, h, m, fc2, expected, n, GemmEpilogue.Accumulate, 1, path);
            foreach (int threads in new[] { 1, 2, 0 })
            {
                var y = Guarded(m * n, y0);
                Int8Gemm.Mlp(x, c, m, fc1, fc2, y.AsSpan(Guard, m * n), n, threads, path);
                string what = $"{path} MLP m={m} in={c} hidden={h} out={n} threads={threads}";
                for (int i = 0; i < expected.Length; i++)
                    if (BitConverter.SingleToInt32Bits(y[Guard + i]) != BitConverter.SingleToInt32Bits(expected[i]))
                        Assert.Fail($"{what}: element {i} is {y[Guard + i]:R}, the two layers give {expected[i]:R}");
                Reference.AssertUntouched(y.AsSpan(0, Guard), Sentinel, what);
                Reference.AssertUntouched(y.AsSpan(Guard + m * n), Sentinel, what);
            }
        }
    }

    [Fact]
    public void NonFiniteActivationsGiveNaNRowsAndLeaveOthersAlone()
    {
        int m = 4, n = 20, k = 24;
        var x = Reference.Random(m * k, 5);
        x[1 * k + 3] = float.PositiveInfinity;
        x[2 * k + 7] = float.NaN;
        var c = new float[m * n];
        Int8Gemm.Linear(x, k, m, Int8Weight.Quantize(Reference.Random(n * k, 6), n, k, default), c, n, GemmEpilogue.Bias, 1, Int8Gemm.BestPath);
        Assert.All(c.AsSpan(n, 2 * n).ToArray(), v => Assert.True(float.IsNaN(v)));
        Assert.All(c.AsSpan(0, n).ToArray().Concat(c.AsSpan(3 * n, n).ToArray()), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void WeightsRoundToTheNearestLevelOfTheirRow()
    {
        int n = 5, k = 37;
        var w = Reference.Random(n * k, 9, 0.2f);
        w.AsSpan(2 * k, k).Clear();
        w[3 * k + 4] = -0.9f;
        var q = Levels(w, n, k);
        var packed = Int8Weight.Quantize(w, n, k, default);
        for (int j = 0; j < n; j++)
        {
            float scale = packed.Scale[j];
            Assert.Equal(q.AsSpan(j * k, k).ToArray().Sum(v => (int)v), packed.ColumnSum[j]);
            for (int p = 0; p < k; p++)
            {
                Assert.InRange(q[j * k + p], -127, 127);
                Assert.True(Math.Abs(w[j * k + p] - q[j * k + p] * scale) <= scale / 2 * (1 + 1e-6), $"row {j}, k {p}");
            }
        }
        Assert.Equal(1f, packed.Scale[2]);
        Assert.Equal(-127, q[3 * k + 4]);
        Assert.Equal(0f, packed.Scale[5]); // padding column of the 16-wide panel
    }

    [Fact]
    public void NonFiniteWeightsAreRefusedByName()
    {
        var w = new float[12];
        w[5] = float.NaN;
        var error = Assert.Throws<ArgumentException>(() => Int8Weight.Quantize(w, 3, 4, default));
        Assert.Contains("non-finite", error.Message);
    }

    [Fact]
    public void QuantizerVectorAndScalarTailsAgree()
    {
        // 83 values: vector blocks of 32/16/8 and a scalar tail; each value checked against the scalar formula.
        var row = Reference.Random(83, 12, 2f);
        var (scale, zero) = Int8Quantizer.Range(row);
        var bytes = new byte[88];
        var shorts = new short[88];
        bytes.AsSpan().Fill(7);
        shorts.AsSpan().Fill(7);
        Int8Quantizer.Quantize(row, scale, zero, bytes);
        Int8Quantizer.Quantize(row, scale, zero, shorts);
        float inv = 1f / scale;
        for (int i = 0; i < row.Length; i++)
        {
            int expected = Math.Clamp((int)MathF.Round(row[i] * inv) + zero, 0, 255);
            Assert.Equal(expected, bytes[i]);
            Assert.Equal(expected, shorts[i]);
        }
        Assert.All(bytes[83..], b => Assert.Equal(0, b));
        Assert.All(shorts[83..], s => Assert.Equal(0, s));
        Assert.Equal((1f, 0), Int8Quantizer.Range(new float[9]));
        Assert.Equal(0, Int8Quantizer.Range([0.5f, 2f, 1f]).Zero);
        Assert.Equal(255, Int8Quantizer.Range([-0.5f, -2f, -1f]).Zero);
    }
}
