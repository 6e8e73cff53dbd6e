using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ToMe.Backends.Cpu;

// The padded, staggered row softmax of attention's score strips.
internal static partial class RowOps
{
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
}
