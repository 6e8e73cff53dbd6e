using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

public unsafe class PackingTests
{
    // Packing.PackPanels of a transposed [n, k] source (row stride k + 3) against its definition, element by element and
    // bit for bit: panel p holds columns [32p, 32p + 32) as rows of 32, element (kk, j) at panel[kk·32 + j − 32p] =
    // src[j·ld + kk], zero past n, nothing written past the packed length. Shapes cover whole and partial 16 × 16 blocks
    // (k not a multiple of 16, n not a multiple of 16 or 32), one-row and one-column sources, and attention's 197 keys.
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 15)]
    [InlineData(5, 16)]
    [InlineData(16, 17)]
    [InlineData(17, 64)]
    [InlineData(31, 80)]
    [InlineData(32, 64)]
    [InlineData(33, 32)]
    [InlineData(48, 96)]
    [InlineData(197, 64)]
    [InlineData(65, 200)]
    public void TransposedPanelsFollowTheirDefinition(int n, int k)
    {
        int ld = k + 3;
        var src = Reference.Random(n * ld, seed: n * 1000 + k, scale: 3f);
        // Values whose bits a copy must keep: −0, ±∞ and NaN.
        src[0] = -0f;
        if (src.Length > 7) src[7] = float.PositiveInfinity;
        if (src.Length > 12) src[12] = float.NegativeInfinity;
        if (src.Length > 20) src[20] = float.NaN;
        long length = CpuGemm.PackedPanelsLength(n, k);
        var packed = new float[length + 16];
        packed.AsSpan().Fill(777.25f);
        fixed (float* s = src, d = packed)
            Packing.PackPanels(s, ld, transposed: true, n, k, d);
        for (int p = 0; p * 32 < n; p++)
        {
            for (int kk = 0; kk < k; kk++)
            {
                for (int j = 0; j < 32; j++)
                {
                    int col = p * 32 + j;
                    float expected = col < n ? src[col * ld + kk] : 0f;
                    float actual = packed[(long)p * 32 * k + kk * 32 + j];
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                        $"n={n} k={k}: panel {p}, row {kk}, column {j}: {actual}, expected {expected}");
                }
            }
        }
        Reference.AssertUntouched(packed.AsSpan((int)length), 777.25f, "past the panels");
    }
}
