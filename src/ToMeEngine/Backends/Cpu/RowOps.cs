using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Per-row float32 helpers of the forward pass. Reductions go through <see cref="Simd"/>, whose summation order is
/// fixed for a given length and machine, so results are deterministic. The hot ones skip tiered compilation, as the
/// GEMM kernels do.
/// </summary>
internal static class RowOps
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
    /// <see cref="SoftmaxRows"/> for rows whose storage, and the key bias's (null for none), runs on to the next multiple
    /// of 16 floats (ld at least that): the last partial vector is handled whole, its padding lanes masked to −∞, so a
    /// row takes three passes (bias + max, exp + sum, divide) and no scalar tail. The results are bit-identical to
    /// <see cref="Softmax(Span{float}, ReadOnlySpan{float})"/>'s (the same exps summed in the same lanes and order); the
    /// row's padding up to the vector boundary is left as zeros.
    /// </summary>
    /// <remarks>
    /// The passes of consecutive rows run staggered: one sweep over the columns does pass 1 of row r + 2, pass 2 of row
    /// r + 1 and pass 3 of row r. Alone, the divide pass waits on the divider while the FMA pipes idle and the exp pass
    /// the reverse; side by side they overlap (1.13–1.24× on strips of 24–72 rows × 197–577 columns on Zen 5). Each row
    /// still sees the same operations in the same order.
    /// </remarks>
    // x: [rows, ld], cols live; keyBias: [⌈cols/16⌉·16] or null
    [MethodImpl(Jit.Hot)]
    public static unsafe void SoftmaxPaddedRows(float* x, int rows, int cols, int ld, float* keyBias)
    {
        const int w = 16;
        int padded = (cols + w - 1) / w * w;
        ArgumentOutOfRangeException.ThrowIfLessThan(ld, padded);
        if (!Vector512.IsHardwareAccelerated)
        {
            var bias = keyBias == null ? ReadOnlySpan<float>.Empty : new ReadOnlySpan<float>(keyBias, cols);
            for (int r = 0; r < rows; r++)
                Softmax(new Span<float>(x + (long)r * ld, cols), bias);
            return;
        }
        int full = cols / w * w;
        var live = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols - full)).AsSingle();
        // Row b waits for pass 2 with its maximum, row c for pass 3 with its sum; null: no row (none yet, or the row was
        // finished by pass 1: NaN or every key masked).
        float* b = null, c = null;
        var shift = Vector512<float>.Zero;
        var total = Vector512<float>.Zero;
        for (int r = 0; r < rows + 2; r++)
        {
            float* a = r < rows ? x + (long)r * ld : null;
            var max = Vector512.Create(float.NegativeInfinity);
            var nan = Vector512<float>.Zero;
            var sum = Vector512<float>.Zero;
            if (a != null && b != null && c != null)
            {
                for (int i = 0; i < padded; i += w)
                {
                    Logits(a, keyBias, i, full, live, ref max, ref nan);
                    Exps(b, i, shift, ref sum);
                    Divide(c, i, total);
                }
            }
            else
            {
                // The first and last two rows, and rows after a finished one: each pass alone.
                for (int i = 0; a != null && i < padded; i += w)
                    Logits(a, keyBias, i, full, live, ref max, ref nan);
                for (int i = 0; b != null && i < padded; i += w)
                    Exps(b, i, shift, ref sum);
                for (int i = 0; c != null && i < padded; i += w)
                    Divide(c, i, total);
            }
            c = b;
            // Pass 3: a true division by the sum, as Softmax's.
            total = Vector512.Create(Vector512.Sum(sum));
            b = a;
            if (a == null)
                continue;
            if (nan != Vector512<float>.Zero)
            {
                // NaN logits (bias applied already) take the general path, whose NaN handling this row must share.
                Softmax(new Span<float>(a, cols), default);
                new Span<float>(a + cols, padded - cols).Clear();
                b = null;
                continue;
            }
            var half = Vector256.MaxNative(max.GetLower(), max.GetUpper());
            var quarter = Vector128.MaxNative(half.GetLower(), half.GetUpper());
            float m = MathF.Max(MathF.Max(quarter[0], quarter[1]), MathF.Max(quarter[2], quarter[3]));
            if (float.IsNegativeInfinity(m))
            {
                new Span<float>(a, padded).Clear();
                b = null;
                continue;
            }
            shift = Vector512.Create(m);
        }
    }

    // Pass 1 of a padded softmax row, one vector: the bias added in place (padding lanes −∞), the running maximum, and
    // whether any logit is NaN.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Logits(float* row, float* keyBias, int i, int full, Vector512<float> live,
        ref Vector512<float> max, ref Vector512<float> nan)
    {
        var v = Vector512.Load(row + i);
        if (keyBias != null)
            v += Vector512.Load(keyBias + i);
        if (i == full)
            v = Vector512.ConditionalSelect(live, v, Vector512.Create(float.NegativeInfinity));
        v.Store(row + i);
        nan |= ~Vector512.Equals(v, v);
        max = Vector512.MaxNative(max, v);
    }

    // Pass 2, one vector: e^(x − max) and its sum; the −∞ padding contributes exact zeros, as ExpShifted512's padded tail.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Exps(float* row, int i, Vector512<float> shift, ref Vector512<float> sum)
    {
        var e = VectorMath.ExpNonPositive(Vector512.Load(row + i) - shift);
        e.Store(row + i);
        sum += e;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Divide(float* row, int i, Vector512<float> total) =>
        (Vector512.Load(row + i) / total).Store(row + i);

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
