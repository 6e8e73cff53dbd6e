using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Per-row float32 helpers of the forward pass. Reductions go through <see cref="Simd"/>, whose summation order is
/// fixed for a given length and machine, so results are deterministic. The hot ones skip tiered compilation, as the
/// GEMM kernels do.
/// </summary>
internal static partial class RowOps
{
    /// <summary>Rows <see cref="LayerNorm"/> normalizes together on 512-bit machines; the rest take the one-row loop.</summary>
    public const int LayerNormRowGroup = 4;

    /// <summary>
    /// y = (x − mean)/√(var + eps)·weight + bias with the biased variance, as torch.nn.LayerNorm.
    /// Two passes (mean, then Σ(x − mean)²) avoid the cancellation of E[x²] − E[x]², and the float32 mean's own
    /// rounding (large when the row has a large common offset) is removed by re-centring on the mean of the
    /// residuals before squaring. y may be x itself.
    /// </summary>
    // x, y: [rows, cols] row-major; weight, bias: [cols]
    [MethodImpl(Jit.Hot)]
    public static void LayerNorm(ReadOnlySpan<float> x, Span<float> y, int rows, int cols,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        CheckLength(x.Length, (long)rows * cols, nameof(x));
        CheckLength(y.Length, (long)rows * cols, nameof(y));
        CheckLength(weight.Length, cols, nameof(weight));
        CheckLength(bias.Length, cols, nameof(bias));
        weight = weight[..cols];
        bias = bias[..cols];
        int r = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            unsafe
            {
                fixed (float* px = x, py = y, w = weight, b = bias)
                    for (; r + LayerNormRowGroup <= rows; r += LayerNormRowGroup)
                        LayerNormQuad512(px + (long)r * cols, py + (long)r * cols, cols, w, b, eps);
            }
        }
        for (; r < rows; r++)
        {
            var src = x.Slice(r * cols, cols);
            var dst = y.Slice(r * cols, cols);
            // Four passes over the row (each fused pair computes exactly what its two ops would).
            float mean = Simd.Sum(src) / cols;
            float residual = Simd.SubtractThenSum(src, mean, dst) / cols;
            float variance = Simd.SubtractThenSumOfSquares(dst, residual, dst) / cols;
            float rstd = 1f / MathF.Sqrt(variance + eps);
            Simd.ScaleThenFusedMultiplyAdd(dst, rstd, weight, bias, dst);
        }
    }

    /// <summary>
    /// <see cref="LayerNorm"/> of four consecutive rows. Each of the four passes runs over the four rows in one loop, with
    /// the operations of Simd's Sum, SubtractThenSum, SubtractThenSumOfSquares and ScaleThenFusedMultiplyAdd in their order
    /// per row (one vector accumulator in index order, Vector512.Sum, then the scalar tail), so the result is bit for bit
    /// that of the one-row loop. A row's passes are chains of dependent adds joined by horizontal sums, divisions and a
    /// square root: the time of one row is their latency, and four rows side by side give the core four independent
    /// chains (two left it waiting on them). The centred values are recomputed from x in each pass rather than stored and
    /// reloaded (the same operations on the same inputs: the same bits), so y is written once; y may still be x, as each
    /// element of x is read for the last time just before its y is stored.
    /// </summary>
    // x, y: four rows [4, cols] (y may be x); w, b: [cols]
    [MethodImpl(Jit.Hot)]
    private static unsafe void LayerNormQuad512(float* x, float* y, int cols, float* w, float* b, float eps)
    {
        const int v = 16;
        int full = cols / v * v;
        float* x1 = x + cols, x2 = x1 + cols, x3 = x2 + cols;

        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < full; i += v)
        {
            a0 += Vector512.Load(x + i);
            a1 += Vector512.Load(x1 + i);
            a2 += Vector512.Load(x2 + i);
            a3 += Vector512.Load(x3 + i);
        }
        float s0 = Vector512.Sum(a0), s1 = Vector512.Sum(a1), s2 = Vector512.Sum(a2), s3 = Vector512.Sum(a3);
        for (int i = full; i < cols; i++)
        {
            s0 += x[i];
            s1 += x1[i];
            s2 += x2[i];
            s3 += x3[i];
        }
        float mean0 = s0 / cols, mean1 = s1 / cols, mean2 = s2 / cols, mean3 = s3 / cols;

        Vector512<float> m0 = Vector512.Create(mean0), m1 = Vector512.Create(mean1), m2 = Vector512.Create(mean2), m3 = Vector512.Create(mean3);
        a0 = a1 = a2 = a3 = default;
        for (int i = 0; i < full; i += v)
        {
            a0 += Vector512.Load(x + i) - m0;
            a1 += Vector512.Load(x1 + i) - m1;
            a2 += Vector512.Load(x2 + i) - m2;
            a3 += Vector512.Load(x3 + i) - m3;
        }
        s0 = Vector512.Sum(a0);
        s1 = Vector512.Sum(a1);
        s2 = Vector512.Sum(a2);
        s3 = Vector512.Sum(a3);
        for (int i = full; i < cols; i++)
        {
            s0 += x[i] - mean0;
            s1 += x1[i] - mean1;
            s2 += x2[i] - mean2;
            s3 += x3[i] - mean3;
        }
        float res0 = s0 / cols, res1 = s1 / cols, res2 = s2 / cols, res3 = s3 / cols;

        Vector512<float> r0 = Vector512.Create(res0), r1 = Vector512.Create(res1), r2 = Vector512.Create(res2), r3 = Vector512.Create(res3);
        a0 = a1 = a2 = a3 = default;
        for (int i = 0; i < full; i += v)
        {
            var d0 = Vector512.Load(x + i) - m0 - r0;
            var d1 = Vector512.Load(x1 + i) - m1 - r1;
            var d2 = Vector512.Load(x2 + i) - m2 - r2;
            var d3 = Vector512.Load(x3 + i) - m3 - r3;
            a0 = Vector512.FusedMultiplyAdd(d0, d0, a0);
            a1 = Vector512.FusedMultiplyAdd(d1, d1, a1);
            a2 = Vector512.FusedMultiplyAdd(d2, d2, a2);
            a3 = Vector512.FusedMultiplyAdd(d3, d3, a3);
        }
        s0 = Vector512.Sum(a0);
        s1 = Vector512.Sum(a1);
        s2 = Vector512.Sum(a2);
        s3 = Vector512.Sum(a3);
        for (int i = full; i < cols; i++)
        {
            float d0 = x[i] - mean0 - res0, d1 = x1[i] - mean1 - res1, d2 = x2[i] - mean2 - res2, d3 = x3[i] - mean3 - res3;
            s0 = MathF.FusedMultiplyAdd(d0, d0, s0);
            s1 = MathF.FusedMultiplyAdd(d1, d1, s1);
            s2 = MathF.FusedMultiplyAdd(d2, d2, s2);
            s3 = MathF.FusedMultiplyAdd(d3, d3, s3);
        }
        float rstd0 = 1f / MathF.Sqrt(s0 / cols + eps), rstd1 = 1f / MathF.Sqrt(s1 / cols + eps);
        float rstd2 = 1f / MathF.Sqrt(s2 / cols + eps), rstd3 = 1f / MathF.Sqrt(s3 / cols + eps);

        Normalize512(x, y, full, m0, r0, Vector512.Create(rstd0), w, b);
        Normalize512(x1, y + cols, full, m1, r1, Vector512.Create(rstd1), w, b);
        Normalize512(x2, y + 2 * cols, full, m2, r2, Vector512.Create(rstd2), w, b);
        Normalize512(x3, y + 3 * cols, full, m3, r3, Vector512.Create(rstd3), w, b);
        for (int i = full; i < cols; i++)
        {
            y[i] = MathF.FusedMultiplyAdd((x[i] - mean0 - res0) * rstd0, w[i], b[i]);
            y[cols + i] = MathF.FusedMultiplyAdd((x1[i] - mean1 - res1) * rstd1, w[i], b[i]);
            y[2 * cols + i] = MathF.FusedMultiplyAdd((x2[i] - mean2 - res2) * rstd2, w[i], b[i]);
            y[3 * cols + i] = MathF.FusedMultiplyAdd((x3[i] - mean3 - res3) * rstd3, w[i], b[i]);
        }
    }

    // The last pass of one row's LayerNorm over its whole vectors: independent per element, so row by row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Normalize512(float* x, float* y, int full, Vector512<float> mean, Vector512<float> residual,
        Vector512<float> rstd, float* w, float* b)
    {
        for (int i = 0; i < full; i += 16)
            Vector512.FusedMultiplyAdd((Vector512.Load(x + i) - mean - residual) * rstd, Vector512.Load(w + i), Vector512.Load(b + i)).Store(y + i);
    }

    /// <summary>
    /// In place: row = softmax(row + keyBias). keyBias (ToMe's log token size) may be empty; a −∞ entry gives
    /// exactly zero weight. A row whose every logit is −∞ (no admissible key) becomes all zeros rather than NaN.
    /// </summary>
    // row: [n]; keyBias: [n] or empty
    [MethodImpl(Jit.Hot)]
    public static void Softmax(Span<float> row, ReadOnlySpan<float> keyBias)
    {
        if (row.IsEmpty)
        {
            return;
        }
        if (!keyBias.IsEmpty)
        {
            CheckLength(keyBias.Length, row.Length, nameof(keyBias));
            Simd.Add(row, keyBias[..row.Length], row);
        }
        float max = Simd.Max(row);
        if (float.IsNegativeInfinity(max))
        {
            row.Clear();
            return;
        }
        float sum = Vector512.IsHardwareAccelerated && !float.IsNaN(max) ? ExpShifted512(row, max) : ExpShifted(row, max);
        Simd.Divide(row, sum, row);
    }

    // row = e^(row − max), returning the sum. The BCL's vector Exp works in double; every argument here is ≤ 0, which
    // the engine's own float exp (~1 ulp) covers at a fraction of the cost: softmax is most of attention's non-GEMM time.
    [MethodImpl(Jit.Hot)]
    private static unsafe float ExpShifted512(Span<float> row, float max)
    {
        var shift = Vector512.Create(max);
        var sum = Vector512<float>.Zero;
        int n = row.Length, i = 0;
        fixed (float* p = row)
        {
            for (; i <= n - 16; i += 16)
            {
                var e = VectorMath.ExpNonPositive(Vector512.Load(p + i) - shift);
                e.Store(p + i);
                sum += e;
            }
            if (i < n)
            {
                // The tail through a padded block: padding is −∞, whose exp is exactly 0.
                float* tail = stackalloc float[16];
                new Span<float>(tail, 16).Fill(float.NegativeInfinity);
                new Span<float>(p + i, n - i).CopyTo(new Span<float>(tail, 16));
                var e = VectorMath.ExpNonPositive(Vector512.Load(tail) - shift);
                e.Store(tail);
                sum += e;
                new Span<float>(tail, n - i).CopyTo(new Span<float>(p + i, n - i));
            }
        }
        return Vector512.Sum(sum);
    }

    private static float ExpShifted(Span<float> row, float max)
    {
        Simd.Subtract(row, max, row);
        TensorPrimitives.Exp(row, row);
        return Simd.Sum(row);
    }

    /// <summary>Row-wise <see cref="Softmax(Span{float}, ReadOnlySpan{float})"/> with one key bias shared by all rows.</summary>
    // x: [rows, cols] with row stride ld; keyBias: [cols] or empty
    [MethodImpl(Jit.Hot)]
    public static void SoftmaxRows(Span<float> x, int rows, int cols, int ld, ReadOnlySpan<float> keyBias)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ArgumentOutOfRangeException.ThrowIfLessThan(ld, cols);
        if (rows == 0)
        {
            return;
        }
        CheckLength(x.Length, (long)(rows - 1) * ld + cols, nameof(x));
        for (int r = 0; r < rows; r++)
        {
            Softmax(x.Slice(r * ld, cols), keyBias);
        }
    }

    /// <summary>
    /// Index of the largest element, the lowest index among equal maxima (−0 and +0 count as equal). If the row
    /// holds a NaN, the first NaN wins, as torch.max does. Returns −1 for an empty row.
    /// </summary>
    [MethodImpl(Jit.Hot)]
    public static int ArgMax(ReadOnlySpan<float> row, out float max)
    {
        if (row.IsEmpty)
        {
            max = float.NaN;
            return -1;
        }
        // Max propagates NaN, so a NaN row finds its first NaN; otherwise the first element equal to the maximum.
        max = Simd.Max(row);
        if (float.IsNaN(max))
        {
            for (int i = 0; i < row.Length; i++)
            {
                if (float.IsNaN(row[i]))
                {
                    return i;
                }
            }
        }
        int index = IndexOfEqual(row, max);
        max = row[index];
        return index;
    }

    /// <summary>Row-wise <see cref="ArgMax(ReadOnlySpan{float}, out float)"/>.</summary>
    // x: [rows, cols]; max, index: [rows]
    public static void ArgMaxRows(ReadOnlySpan<float> x, int rows, int cols, Span<float> max, Span<int> index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        CheckLength(x.Length, (long)rows * cols, nameof(x));
        CheckLength(max.Length, rows, nameof(max));
        CheckLength(index.Length, rows, nameof(index));
        for (int r = 0; r < rows; r++)
        {
            index[r] = ArgMax(x.Slice(r * cols, cols), out max[r]);
        }
    }

    /// <summary>In place: row /= ‖row‖₂, as ToMe's metric normalisation. A zero row stays zero (no NaN).</summary>
    [MethodImpl(Jit.Hot)]
    public static void L2Normalize(Span<float> row)
    {
        float norm = MathF.Sqrt(Simd.SumOfSquares(row));
        if (norm == 0f)
        {
            return;
        }
        Simd.Divide(row, norm, row);
    }

    /// <summary>Row-wise <see cref="L2Normalize(Span{float})"/>.</summary>
    // x: [rows, cols]
    public static void L2NormalizeRows(Span<float> x, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        CheckLength(x.Length, (long)rows * cols, nameof(x));
        for (int r = 0; r < rows; r++)
        {
            L2Normalize(x.Slice(r * cols, cols));
        }
    }

    /// <summary>In place exact-erf GELU, the same function as the GEMM epilogue.</summary>
    public static void Gelu(Span<float> x)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + Vector512<float>.Count <= x.Length; i += Vector512<float>.Count)
            {
                VectorMath.Gelu(Vector512.Create(x.Slice(i, Vector512<float>.Count))).CopyTo(x[i..]);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<float>.Count <= x.Length; i += Vector256<float>.Count)
            {
                VectorMath.Gelu(Vector256.Create(x.Slice(i, Vector256<float>.Count))).CopyTo(x[i..]);
            }
        }
        for (; i < x.Length; i++)
        {
            x[i] = VectorMath.Gelu(x[i]);
        }
    }

    [MethodImpl(Jit.Hot)]
    private static int IndexOfEqual(ReadOnlySpan<float> row, float value)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var target = Vector512.Create(value);
            for (; i + Vector512<float>.Count <= row.Length; i += Vector512<float>.Count)
            {
                var hits = Vector512.Equals(Vector512.Create(row.Slice(i, Vector512<float>.Count)), target);
                if (hits != Vector512<float>.Zero)
                {
                    return i + (int)ulong.TrailingZeroCount(hits.ExtractMostSignificantBits());
                }
            }
        }
        for (; i < row.Length; i++)
        {
            if (row[i] == value)
            {
                return i;
            }
        }
        return row.Length - 1;
    }

    private static void CheckLength(long actual, long needed, string name)
    {
        if (actual < needed)
        {
            throw new ArgumentException($"{name} holds {actual} floats, {needed} needed", name);
        }
    }
}
