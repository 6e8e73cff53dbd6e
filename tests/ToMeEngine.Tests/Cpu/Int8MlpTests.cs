using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The fused int8 MLP (fc1 with GELU in its epilogue, the hidden rows quantized block by block, fc2) against the two
/// layers run one after the other, bit for bit, on rows whose hidden ranges are easy to get wrong: −0 and large GELU
/// outputs, zeros, NaN and ±∞, at batch-shaped row counts.
/// </summary>
public class Int8MlpTests
{
    [Theory]
    [MemberData(nameof(Int8GemmTests.Paths), MemberType = typeof(Int8GemmTests))]
    public void MlpWithNonFiniteAndSaturatedRowsEqualsTheTwoLayers(string pathName)
    {
        var path = Int8GemmTests.Require(pathName);
        int seed = 900;
        // (m, in, hidden, out): 2 rows, three and an odd number of ViT-Ti images' worth of rows, hidden widths off 16.
        foreach (var (m, c, h, n) in new[] { (2, 8, 40, 8), (3 * 197, 64, 256, 64), (5 * 41, 192, 768, 192), (13, 24, 130, 5), (577, 16, 18, 16) })
        {
            var x = Reference.Random(m * c, seed++, 2f);
            for (int i = 0; i < m; i++)
            {
                var row = x.AsSpan(i * c, c);
                switch (i % 7)
                {
                    case 1: foreach (ref var v in row) v *= 400f; break; // GELU outputs of −0 and of large x
                    case 2: row.Clear(); break;
                    case 3 when i % 3 == 0: row[i % c] = float.NaN; break;
                    case 5 when i % 3 == 2: row[i % c] = float.PositiveInfinity; break;
                }
            }
            var fc1 = Int8Weight.Quantize(Reference.Random(h * c, seed++), h, c, Reference.Random(h, seed++));
            var fc2 = Int8Weight.Quantize(Reference.Random(n * h, seed++, 0.1f), n, h, Reference.Random(n, seed++));
            var y0 = Reference.Random(m * n, seed++);
            var hidden = new float[m * h];
            var expected = y0.ToArray();
            Int8Gemm.Linear(x, c, m, fc1, hidden, h, GemmEpilogue.BiasGelu, 1, path);
            Int8Gemm.Linear(hidden, h, m, fc2, expected, n, GemmEpilogue.Accumulate, 1, path);
            foreach (int threads in new[] { 1, 2 })
            {
                var y = y0.ToArray();
                Int8Gemm.Mlp(x, c, m, fc1, fc2, y, n, threads, path);
                for (int i = 0; i < expected.Length; i++)
                    if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(expected[i])
                        && !(float.IsNaN(y[i]) && float.IsNaN(expected[i])))
                        Assert.Fail($"{path} MLP m={m} in={c} hidden={h} out={n} threads={threads}: element {i} is {y[i]:R}, the two layers give {expected[i]:R}");
            }
        }
    }
}
