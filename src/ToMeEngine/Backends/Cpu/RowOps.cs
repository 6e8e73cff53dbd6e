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
                    for (; r + 2 <= rows; r += 2)
                        LayerNormPair512(px + (long)r * cols, py + (long)r * cols, cols, w, b, eps);
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
    /// <see cref="LayerNorm"/> of two consecutive rows: each of the four passes runs over both rows in one loop, with the
    /// operations of Simd's Sum, SubtractThenSum, SubtractThenSumOfSquares and ScaleThenFusedMultiplyAdd in their order
    /// per row (one vector accumulator in index order, Vector512.Sum, then the scalar tail), so the result is bit for bit
    /// that of the one-row loop. A row's passes are chains of dependent adds joined by scalar divisions and a square
    /// root; two rows side by side give the core two independent chains, and the four Simd calls per row (with their
    /// span slicing) are gone. Measured at 197 × 192 on one thread: 12.7 µs before, 7.0 µs after.
    /// </summary>
    // x, y: two rows [2, cols] (y may be x); w, b: [cols]
    [MethodImpl(Jit.Hot)]
    private static unsafe void LayerNormPair512(float* x, float* y, int cols, float* w, float* b, float eps)
    {
        const int v = 16;
        int full = cols / v * v;
        float* x1 = x + cols, y1 = y + cols;

        Vector512<float> acc0 = default, acc1 = default;
        for (int i = 0; i < full; i += v)
        {
            acc0 += Vector512.Load(x + i);
            acc1 += Vector512.Load(x1 + i);
        }
        float sum0 = Vector512.Sum(acc0), sum1 = Vector512.Sum(acc1);
        for (int i = full; i < cols; i++)
        {
            sum0 += x[i];
            sum1 += x1[i];
        }
        float mean0 = sum0 / cols, mean1 = sum1 / cols;

        var m0 = Vector512.Create(mean0);
        var m1 = Vector512.Create(mean1);
        acc0 = acc1 = default;
        for (int i = 0; i < full; i += v)
        {
            var d0 = Vector512.Load(x + i) - m0;
            var d1 = Vector512.Load(x1 + i) - m1;
            d0.Store(y + i);
            d1.Store(y1 + i);
            acc0 += d0;
            acc1 += d1;
        }
        sum0 = Vector512.Sum(acc0);
        sum1 = Vector512.Sum(acc1);
        for (int i = full; i < cols; i++)
        {
            float d0 = x[i] - mean0, d1 = x1[i] - mean1;
            y[i] = d0;
            y1[i] = d1;
            sum0 += d0;
            sum1 += d1;
        }
        float residual0 = sum0 / cols, residual1 = sum1 / cols;

        m0 = Vector512.Create(residual0);
        m1 = Vector512.Create(residual1);
        acc0 = acc1 = default;
        for (int i = 0; i < full; i += v)
        {
            var d0 = Vector512.Load(y + i) - m0;
            var d1 = Vector512.Load(y1 + i) - m1;
            d0.Store(y + i);
            d1.Store(y1 + i);
            acc0 = Vector512.FusedMultiplyAdd(d0, d0, acc0);
            acc1 = Vector512.FusedMultiplyAdd(d1, d1, acc1);
        }
        sum0 = Vector512.Sum(acc0);
        sum1 = Vector512.Sum(acc1);
        for (int i = full; i < cols; i++)
        {
            float d0 = y[i] - residual0, d1 = y1[i] - residual1;
            y[i] = d0;
            y1[i] = d1;
            sum0 = MathF.FusedMultiplyAdd(d0, d0, sum0);
            sum1 = MathF.FusedMultiplyAdd(d1, d1, sum1);
        }
        float rstd0 = 1f / MathF.Sqrt(sum0 / cols + eps), rstd1 = 1f / MathF.Sqrt(sum1 / cols + eps);

        var s0 = Vector512.Create(rstd0);
        var s1 = Vector512.Create(rstd1);
        for (int i = 0; i < full; i += v)
        {
            var g = Vector512.Load(w + i);
            var beta = Vector512.Load(b + i);
            Vector512.FusedMultiplyAdd(Vector512.Load(y + i) * s0, g, beta).Store(y + i);
            Vector512.FusedMultiplyAdd(Vector512.Load(y1 + i) * s1, g, beta).Store(y1 + i);
        }
        for (int i = full; i < cols; i++)
        {
            y[i] = MathF.FusedMultiplyAdd(y[i] * rstd0, w[i], b[i]);
            y1[i] = MathF.FusedMultiplyAdd(y1[i] * rstd1, w[i], b[i]);
        }
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
    /// A row whose live logits all lie within 87.3 of its maximum (nearly every attention row) takes the exp without
    /// its clamp and flush (<see cref="VectorMath.ExpNonPositiveNormal"/>, the same bits there) on its full vectors: pass 1
    /// keeps the row's minimum over them for the test, and sums the logits into a probe instead of testing each vector
    /// for NaN (a NaN, or ∞ − ∞ from infinite logits, makes the probe NaN and sends the row to the general path, whose
    /// bits it shares either way).
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
        // finished by pass 1: NaN or every key masked). Row b's vectors below normal take the exp without clamp and flush.
        float* b = null, c = null;
        int normal = 0;
        var shift = Vector512<float>.Zero;
        var total = Vector512<float>.Zero;
        for (int r = 0; r < rows + 2; r++)
        {
            float* a = r < rows ? x + (long)r * ld : null;
            var max = Vector512.Create(float.NegativeInfinity);
            var min = Vector512.Create(float.PositiveInfinity);
            var probe = Vector512<float>.Zero;
            var sum = Vector512<float>.Zero;
            if (a != null && b != null && c != null)
            {
                // The full vectors, with row b's exp chosen once (normal is full or 0), then the partial one.
                if (normal != 0)
                {
                    int i = 0;
                    for (; i + 4 * w <= full; i += 4 * w)
                    {
                        for (int k = 0; k < 4 * w; k += w)
                            Logits(a, keyBias, i + k, ref max, ref min, ref probe);
                        ExpsNormal4(b, i, shift, ref sum);
                        for (int k = 0; k < 4 * w; k += w)
                            Divide(c, i + k, total);
                    }
                    for (; i < full; i += w)
                    {
                        Logits(a, keyBias, i, ref max, ref min, ref probe);
                        ExpsNormal(b, i, shift, ref sum);
                        Divide(c, i, total);
                    }
                }
                else
                {
                    for (int i = 0; i < full; i += w)
                    {
                        Logits(a, keyBias, i, ref max, ref min, ref probe);
                        Exps(b, i, shift, ref sum);
                        Divide(c, i, total);
                    }
                }
                if (full < padded)
                {
                    LogitsPartial(a, keyBias, full, live, ref max, ref probe);
                    Exps(b, full, shift, ref sum);
                    Divide(c, full, total);
                }
            }
            else
            {
                // The first and last two rows, and rows after a finished one: each pass alone.
                if (a != null)
                {
                    for (int i = 0; i < full; i += w)
                        Logits(a, keyBias, i, ref max, ref min, ref probe);
                    if (full < padded)
                        LogitsPartial(a, keyBias, full, live, ref max, ref probe);
                }
                if (b != null)
                {
                    int i = 0;
                    for (; i + 4 * w <= normal; i += 4 * w)
                        ExpsNormal4(b, i, shift, ref sum);
                    for (; i < normal; i += w)
                        ExpsNormal(b, i, shift, ref sum);
                    for (; i < padded; i += w)
                        Exps(b, i, shift, ref sum);
                }
                for (int i = 0; c != null && i < padded; i += w)
                    Divide(c, i, total);
            }
            c = b;
            // Pass 3: a true division by the sum, as Softmax's.
            total = Vector512.Create(Vector512.Sum(sum));
            b = a;
            if (a == null)
                continue;
            if (!Vector512.EqualsAll(probe, probe))
            {
                // NaN logits (bias applied already) take the general path, whose NaN handling this row must share.
                Softmax(new Span<float>(a, cols), default);
                new Span<float>(a + cols, padded - cols).Clear();
                b = null;
                continue;
            }
            // No NaN reaches here, so the native maximum is the row's (up to the sign of a zero maximum, which changes no
            // x − m but ±0's, whose exps are both 1): vmaxps instead of MathF.Max's NaN and signed-zero fix-ups.
            float m = HorizontalMax(max);
            if (float.IsNegativeInfinity(m))
            {
                new Span<float>(a, padded).Clear();
                b = null;
                continue;
            }
            shift = Vector512.Create(m);
            // Every full vector's x − m is at least its minimum's (the subtraction is monotonic).
            normal = HorizontalMin(min) - m >= VectorMath.ExpFloor ? full : 0;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMax(Vector512<float> v)
    {
        var half = Vector256.MaxNative(v.GetLower(), v.GetUpper());
        var quarter = Vector128.MaxNative(half.GetLower(), half.GetUpper());
        var pair = Vector128.MaxNative(quarter, Vector128.Shuffle(quarter, Vector128.Create(2, 3, 0, 1)));
        return Vector128.MaxNative(pair, Vector128.Shuffle(pair, Vector128.Create(1, 0, 3, 2))).ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMin(Vector512<float> v)
    {
        var half = Vector256.MinNative(v.GetLower(), v.GetUpper());
        var quarter = Vector128.MinNative(half.GetLower(), half.GetUpper());
        var pair = Vector128.MinNative(quarter, Vector128.Shuffle(quarter, Vector128.Create(2, 3, 0, 1)));
        return Vector128.MinNative(pair, Vector128.Shuffle(pair, Vector128.Create(1, 0, 3, 2))).ToScalar();
    }

    // Pass 1 of a padded softmax row, one full vector: the bias added in place, the running maximum and minimum, and the
    // probe (the logits' sum: NaN where any logit is NaN).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Logits(float* row, float* keyBias, int i, ref Vector512<float> max, ref Vector512<float> min,
        ref Vector512<float> probe)
    {
        var v = Vector512.Load(row + i);
        if (keyBias != null)
            v += Vector512.Load(keyBias + i);
        v.Store(row + i);
        probe += v;
        max = Vector512.MaxNative(max, v);
        min = Vector512.MinNative(min, v);
    }

    // Pass 1 of the partial last vector: its padding lanes set to −∞; left out of the minimum (its exp keeps the flush).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void LogitsPartial(float* row, float* keyBias, int i, Vector512<float> live, ref Vector512<float> max,
        ref Vector512<float> probe)
    {
        var v = Vector512.Load(row + i);
        if (keyBias != null)
            v += Vector512.Load(keyBias + i);
        v = Vector512.ConditionalSelect(live, v, Vector512.Create(float.NegativeInfinity));
        v.Store(row + i);
        probe += v;
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

    // ExpsNormal of four vectors, their exps in lockstep; summed in order, as one at a time.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void ExpsNormal4(float* row, int i, Vector512<float> shift, ref Vector512<float> sum)
    {
        float* p = row + i;
        var e0 = Vector512.Load(p) - shift;
        var e1 = Vector512.Load(p + 16) - shift;
        var e2 = Vector512.Load(p + 32) - shift;
        var e3 = Vector512.Load(p + 48) - shift;
        VectorMath.ExpNonPositiveNormal4(ref e0, ref e1, ref e2, ref e3);
        e0.Store(p); e1.Store(p + 16); e2.Store(p + 32); e3.Store(p + 48);
        sum = sum + e0 + e1 + e2 + e3;
    }

    // Exps where every x − max lies in exp's normal range.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void ExpsNormal(float* row, int i, Vector512<float> shift, ref Vector512<float> sum)
    {
        var e = VectorMath.ExpNonPositiveNormal(Vector512.Load(row + i) - shift);
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
