using System.Runtime.Intrinsics;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

public class VectorMathTests
{
    // Relative GELU tolerance: 1e-6, widened in the far negative tail where the float32 rounding of the exp
    // argument −u² dominates: rounding u = x/√2 and the FMA give up to ~3ε·u² absolute, i.e. relative in erfc.
    private static double GeluTolerance(float x, double reference) => (1e-6 + 3 * 6e-8 * x * x) * Math.Abs(reference) + 1e-38;

    private static IEnumerable<float> Grid()
    {
        for (int i = -80000; i <= 80000; i++)
        {
            yield return i * 1e-4f;
        }
        foreach (float x in new[] { 0f, -0f, 1e-30f, -1e-30f, 1e-8f, 0.7499999f, 0.75f, -0.75f, 1.0606601f, 9f, -9f, 30f, -30f })
        {
            yield return x;
        }
    }

    [Fact]
    public void ErfIsWithinOneMillionthEverywhere()
    {
        double worst = 0;
        foreach (float x in Grid())
        {
            double err = Math.Abs(VectorMath.Erf(x) - Reference.Erf(x));
            worst = Math.Max(worst, err);
        }
        Assert.True(worst <= 1e-6, $"max |erf error| {worst:G3}");
    }

    [Fact]
    public void ScalarGeluHasSmallRelativeError()
    {
        foreach (float x in Grid())
        {
            double r = Reference.Gelu(x);
            double g = VectorMath.Gelu(x);
            Assert.True(Math.Abs(g - r) <= GeluTolerance(x, r), $"GELU({x:R}) = {g:R}, expected {r:R}");
        }
    }

    [Fact]
    public void VectorGeluMatchesReference()
    {
        var xs = Grid().ToArray();
        var v = xs.ToArray();
        RowOps.Gelu(v);
        var lanes = new float[16];
        for (int i = 0; i < xs.Length; i++)
        {
            double r = Reference.Gelu(xs[i]);
            Assert.True(Math.Abs(v[i] - r) <= GeluTolerance(xs[i], r), $"GELU({xs[i]:R}) = {v[i]:R}, expected {r:R}");
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (int i = 0; i + 8 <= xs.Length; i += 8)
            {
                VectorMath.Gelu(Vector256.Create(xs.AsSpan(i, 8))).CopyTo(lanes);
                for (int j = 0; j < 8; j++)
                {
                    double r = Reference.Gelu(xs[i + j]);
                    Assert.True(Math.Abs(lanes[j] - r) <= GeluTolerance(xs[i + j], r), $"GELU256({xs[i + j]:R})");
                }
            }
        }
    }

    // The vector exp of softmax and GELU against its definition step by step in scalar float32 (Cephes' expf: clamp,
    // n = round(x·log2 e), g = x − n·ln2 in two parts, the degree-5 polynomial, then y·2ⁿ rounded once), bit for bit
    // over every 127th float in [−110, 0] and the special values, so a faster formulation cannot change a result.
    [Fact]
    public void VectorExpFollowsItsDefinitionBitForBit()
    {
        if (!Vector512.IsHardwareAccelerated)
            return;
        var xs = new List<float> { 0f, -0f, float.NegativeInfinity, -87.33654f, -87.33655f, -87.3f, -88f, -103f, -104f, -1e-30f, -float.Epsilon };
        for (int bits = BitConverter.SingleToInt32Bits(-0f); BitConverter.Int32BitsToSingle(bits) >= -110f; bits += 127)
            xs.Add(BitConverter.Int32BitsToSingle(bits));
        while (xs.Count % 16 != 0)
            xs.Add(-1f);
        var all = xs.ToArray();
        var lanes = new float[16];
        for (int i = 0; i < all.Length; i += 16)
        {
            VectorMath.ExpNonPositive(Vector512.Create(all.AsSpan(i, 16))).CopyTo(lanes);
            for (int j = 0; j < 16; j++)
            {
                float x = all[i + j], expected = CephesExp(x);
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(lanes[j]),
                    $"exp({x:R}) = {lanes[j]:R}, expected {expected:R}");
            }
        }
        var nan = VectorMath.ExpNonPositive(Vector512.Create(float.NaN));
        Assert.True(float.IsNaN(nan[0]));

        static float CephesExp(float x)
        {
            const float floor = -87.33654f;
            float clamped = MathF.Max(x, floor);
            float n = MathF.Round(clamped * 1.44269504088896341f);
            float g = MathF.FusedMultiplyAdd(n, -0.693359375f, clamped);
            g = MathF.FusedMultiplyAdd(n, 2.12194440e-4f, g);
            float p = 1.9875691500e-4f;
            p = MathF.FusedMultiplyAdd(p, g, 1.3981999507e-3f);
            p = MathF.FusedMultiplyAdd(p, g, 8.3334519073e-3f);
            p = MathF.FusedMultiplyAdd(p, g, 4.1665795894e-2f);
            p = MathF.FusedMultiplyAdd(p, g, 1.6666665459e-1f);
            p = MathF.FusedMultiplyAdd(p, g, 5.0000001201e-1f);
            float y = MathF.FusedMultiplyAdd(p, g * g, g) + 1f;
            return x < floor ? 0f : y * MathF.ScaleB(1f, (int)n);
        }
    }

    // The GEMM epilogue's eight-vector GELU against the one-vector function, bit for bit: the interleaving must only
    // reorder independent work. The grid, the special values and every 4099th float of the whole range.
    [Fact]
    public unsafe void FourRowGeluMatchesOneVectorGeluBitForBit()
    {
        if (!Vector512.IsHardwareAccelerated)
            return;
        var xs = Grid().Concat([float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon,
            float.MaxValue, float.MinValue, 1e-38f, -1e-38f, -5.5f, 5.5f]).ToList();
        for (long bits = 0; bits <= uint.MaxValue; bits += 4099)
            xs.Add(BitConverter.Int32BitsToSingle((int)(uint)bits));
        const int ld = 37; // rows of 32 floats at an odd stride
        while (xs.Count % 128 != 0)
            xs.Add(-0f);
        var tile = new float[4 * ld];
        for (int start = 0; start < xs.Count; start += 128)
        {
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 32; j++)
                    tile[r * ld + j] = xs[start + r * 32 + j];
            fixed (float* p = tile)
                VectorMath.GeluRows4x32(p, ld);
            for (int r = 0; r < 4; r++)
                for (int h = 0; h < 2; h++)
                {
                    var expected = VectorMath.Gelu(Vector512.Create(xs.GetRange(start + r * 32 + h * 16, 16).ToArray()));
                    for (int j = 0; j < 16; j++)
                    {
                        float got = tile[r * ld + h * 16 + j];
                        Assert.True(BitConverter.SingleToInt32Bits(expected[j]) == BitConverter.SingleToInt32Bits(got),
                            $"GELU({xs[start + r * 32 + h * 16 + j]:R}) = {got:R}, expected {expected[j]:R}");
                    }
                }
            for (int r = 0; r < 3; r++)
                Assert.Equal(0f, tile[r * ld + 32 + 4]); // the stride gap is untouched (zero from allocation)
        }
    }

    [Fact]
    public void GeluOfZeroIsZeroAndLargeInputsSaturate()
    {
        Assert.Equal(0f, VectorMath.Gelu(0f));
        Assert.Equal(50f, VectorMath.Gelu(50f));
        Assert.Equal(0f, VectorMath.Gelu(-50f));
        var v = new float[] { 0f, 50f, -50f, float.NaN, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f };
        RowOps.Gelu(v);
        Assert.Equal(0f, v[0]);
        Assert.Equal(50f, v[1]);
        Assert.Equal(0f, v[2]);
        Assert.True(float.IsNaN(v[3]));
    }
}
