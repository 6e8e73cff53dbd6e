using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The generated 512-bit kernel's whole-tile epilogue (columns loaded once per tile, GELU on eight vectors side by side)
/// against the per-row epilogue of the compiled kernels, bit for bit, at row counts that leave every kind of edge tile
/// (M = 1, 2, 197, 577, 1025, 3152), widths that are and are not multiples of the two-panel tile, strided output rows and
/// activation rows the quantizer must handle (zeros, one-signed, NaN).
/// </summary>
public class Int8EpilogueTests
{
    private const int Guard = 24;
    private const float Sentinel = -7777.25f;

    private static float[] Activations(int m, int k, int seed)
    {
        var x = Reference.Random(m * k, seed, 3f);
        for (int i = 0; i < m; i++)
        {
            var row = x.AsSpan(i * k, k);
            switch (i % 11)
            {
                case 1: foreach (ref var v in row) v = Math.Abs(v) - 0.2f; break;
                case 2: row.Clear(); break;
                case 5: row[i % k] = float.NaN; break;
                case 7: foreach (ref var v in row) v *= 300f; break; // GELU far into both tails
            }
        }
        return x;
    }

    [Theory]
    [InlineData(1, 32, 8), InlineData(2, 64, 5), InlineData(197, 2304, 96), InlineData(577, 48, 33)]
    [InlineData(1025, 96, 12), InlineData(3152, 64, 40), InlineData(9, 3072, 768), InlineData(197, 33, 770)]
    public void WholeTileEpilogueEqualsThePerRowEpilogue(int m, int n, int k)
    {
        Assert.SkipUnless(Int8Gemm.IsSupported(Int8Path.Avx512Vnni), "the generated kernel does not run on this machine");
        var reference = Int8Gemm.IsSupported(Int8Path.AvxVnni) ? Int8Path.AvxVnni : Int8Path.Scalar;
        int seed = 7100 + m + n + k;
        var x = Activations(m, k, seed++);
        var weight = Int8Weight.Quantize(Reference.Random(n * k, seed++), n, k, Reference.Random(n, seed++));
        int ldc = n + 3; // output rows that are not whole tiles apart, with columns between them that must stay untouched
        foreach (var epilogue in new[] { GemmEpilogue.None, GemmEpilogue.Bias, GemmEpilogue.BiasGelu, GemmEpilogue.Accumulate })
        {
            var c0 = Reference.Random(m * ldc, seed++);
            var expected = c0.ToArray();
            Int8Gemm.Linear(x, k, m, weight, expected, ldc, epilogue, 1, reference);
            foreach (int threads in new[] { 1, 2 })
            {
                var c = new float[m * ldc + 2 * Guard];
                c.AsSpan().Fill(Sentinel);
                c0.CopyTo(c, Guard);
                Int8Gemm.Linear(x, k, m, weight, c.AsSpan(Guard, m * ldc), ldc, epilogue, threads, Int8Path.Avx512Vnni);
                string what = $"{epilogue} m={m} n={n} k={k} threads={threads}";
                for (int i = 0; i < expected.Length; i++)
                    if (BitConverter.SingleToInt32Bits(c[Guard + i]) != BitConverter.SingleToInt32Bits(expected[i])
                        && !(float.IsNaN(c[Guard + i]) && float.IsNaN(expected[i])))
                        Assert.Fail($"{what}: element ({i / ldc}, {i % ldc}) is {c[Guard + i]:R}, {reference} gave {expected[i]:R}");
                Reference.AssertUntouched(c.AsSpan(0, Guard), Sentinel, what);
                Reference.AssertUntouched(c.AsSpan(Guard + m * ldc), Sentinel, what);
            }
        }
    }
}
