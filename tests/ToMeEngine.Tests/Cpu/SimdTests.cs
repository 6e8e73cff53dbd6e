using System.Numerics.Tensors;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>The backend's span primitives against TensorPrimitives (same meaning, own summation order).</summary>
public class SimdTests
{
    public static TheoryData<int> Lengths => [1, 2, 15, 16, 17, 64, 197, 768, 1001];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void ElementwiseOpsMatchExactly(int n)
    {
        var x = Reference.Random(n, seed: n, scale: 3f);
        var y = Reference.Random(n, seed: n + 1, scale: 2f);
        var z = Reference.Random(n, seed: n + 2);
        void Same(Action<float[]> ours, Action<float[]> theirs)
        {
            var a = new float[n + 3];
            var b = new float[n + 3];
            ours(a);
            theirs(b);
            Assert.Equal(b, a);
        }
        Same(d => Simd.Add(x, y, d), d => TensorPrimitives.Add(x, y, d.AsSpan(0, n)));
        Same(d => Simd.Subtract(x, 0.3f, d), d => TensorPrimitives.Subtract(x, 0.3f, d.AsSpan(0, n)));
        Same(d => Simd.Multiply(x, 1.7f, d), d => TensorPrimitives.Multiply(x, 1.7f, d.AsSpan(0, n)));
        Same(d => Simd.Divide(x, 3f, d), d => TensorPrimitives.Divide(x, 3f, d.AsSpan(0, n)));
        Same(d => Simd.MultiplyAdd(x, 1.3f, y, d), d => TensorPrimitives.MultiplyAdd(x, 1.3f, y, d.AsSpan(0, n)));
        Same(d => Simd.FusedMultiplyAdd(x, y, z, d), d => TensorPrimitives.FusedMultiplyAdd(x, y, z, d.AsSpan(0, n)));
        // In place, as the row ops use them.
        var inPlace = (float[])x.Clone();
        Simd.Add(inPlace, y, inPlace);
        Assert.Equal(x.Zip(y, (a, b) => a + b), inPlace);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void FusedPassesEqualTheirTwoOpsBitForBit(int n)
    {
        var x = Reference.Random(n, seed: n + 5, scale: 3f);
        var w = Reference.Random(n, seed: n + 6);
        var b = Reference.Random(n, seed: n + 7);
        var fused = new float[n + 3];
        var apart = new float[n + 3];
        float s1 = Simd.SubtractThenSum(x, 0.3f, fused);
        Simd.Subtract(x, 0.3f, apart);
        Assert.Equal(Simd.Sum(apart.AsSpan(0, n)), s1);
        Assert.Equal(apart, fused);
        float s2 = Simd.SubtractThenSumOfSquares(x, -1.1f, fused);
        Simd.Subtract(x, -1.1f, apart);
        Assert.Equal(Simd.SumOfSquares(apart.AsSpan(0, n)), s2);
        Assert.Equal(apart, fused);
        // In place, as LayerNorm runs it.
        Simd.ScaleThenFusedMultiplyAdd(fused.AsSpan(0, n), 0.37f, w, b, fused);
        Simd.Multiply(apart.AsSpan(0, n), 0.37f, apart);
        Simd.FusedMultiplyAdd(apart.AsSpan(0, n), w, b, apart);
        Assert.Equal(apart, fused);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void ReductionsAreCloseToFloat64(int n)
    {
        var x = Reference.Random(n, seed: 7 * n, scale: 3f);
        var y = Reference.Random(n, seed: 7 * n + 1);
        double sum = x.Sum(v => (double)v), dot = x.Zip(y, (a, b) => (double)a * b).Sum(), squares = x.Sum(v => (double)v * v);
        double magnitude = x.Sum(v => Math.Abs((double)v)) * 3;
        Assert.True(Math.Abs(Simd.Sum(x) - sum) <= 1e-6 * magnitude, $"sum {Simd.Sum(x)} vs {sum}");
        Assert.True(Math.Abs(Simd.Dot(x, y) - dot) <= 1e-6 * magnitude, $"dot {Simd.Dot(x, y)} vs {dot}");
        Assert.True(Math.Abs(Simd.SumOfSquares(x) - squares) <= 1e-6 * squares, "sum of squares");
        Assert.Equal((float)Math.Sqrt(squares), Simd.Norm(x), 1e-5f * (float)Math.Sqrt(squares));
        Assert.Equal(x.Max(), Simd.Max(x));
    }

    [Fact]
    public void MaxPropagatesNaNAndSeesTheTail()
    {
        foreach (int at in new[] { 0, 15, 16, 20 })
        {
            var x = Enumerable.Repeat(-1f, 21).ToArray();
            x[at] = float.NaN;
            Assert.True(float.IsNaN(Simd.Max(x)), $"NaN at {at}");
        }
        var tail = Enumerable.Repeat(float.NegativeInfinity, 33).ToArray();
        tail[32] = 5f;
        Assert.Equal(5f, Simd.Max(tail));
    }

    [Fact]
    public void MismatchedLengthsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => Simd.Add(new float[5], new float[4], new float[5]));
        Assert.Throws<ArgumentException>(() => Simd.Multiply(new float[5], 2f, new float[4]));
        Assert.Throws<ArgumentException>(() => Simd.Dot(new float[3], new float[4]));
    }
}
