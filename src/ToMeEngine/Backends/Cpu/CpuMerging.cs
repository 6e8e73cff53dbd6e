using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

internal sealed partial class CpuBackend
{
    // Rows of set A per task of BipartiteMatch: a batch-1 match still spreads over every thread.
    private const int MatchBlock = 16;

    // The L2-normalized metric of BipartiteMatch.
    private readonly ScratchSlots<float[]> matchScratch;

    [MethodImpl(Jit.Hot)]
    public void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens,
        DeviceBuffer best, DeviceBuffer bestIndex)
    {
        int protectedA = (prefixTokens + 1) / 2, protectedB = prefixTokens / 2;
        var m = F(metric);
        var bestValue = F(best);
        var bestIdx = I(bestIndex);
        int ta = (tokens + 1) / 2, tb = tokens / 2, rows = batch * tokens;
        var normalized = matchScratch.Take();
        if (normalized is null || normalized.Length < rows * dim)
            normalized = new float[rows * dim];
        For(rows, 32, [MethodImpl(Jit.Hot)] (start, end) =>
            Normalize(m.AsSpan(start * dim, (end - start) * dim), end - start, dim, normalized.AsSpan(start * dim, (end - start) * dim)));
        int blocks = (ta + MatchBlock - 1) / MatchBlock;
        Team.For(batch * blocks, [MethodImpl(Jit.Hot)] (task) =>
        {
            int b = task / blocks, i0 = task % blocks * MatchBlock;
            MatchRows(normalized.AsSpan(b * tokens * dim, tokens * dim), dim, i0, Math.Min(ta, i0 + MatchBlock), protectedA,
                protectedB, tb, bestValue.AsSpan(b * ta, ta), bestIdx.AsSpan(b * ta, ta));
        });
        matchScratch.Return(normalized);
    }

    // Set-A rows [i0, i1) of one image: the most similar set-B token (the first on ties) and its similarity.
    [MethodImpl(Jit.Hot)]
    private static void MatchRows(ReadOnlySpan<float> normalized, int dim, int i0, int i1, int protectedA, int protectedB, int tb,
        Span<float> bestValue, Span<int> bestIdx)
    {
        if (Vector512.IsHardwareAccelerated && dim % 16 == 0)
        {
            MatchRows512(normalized, dim, i0, i1, protectedA, protectedB, tb, bestValue, bestIdx);
            return;
        }
        for (int i = i0; i < i1; i++)
        {
            float max = float.NegativeInfinity;
            int arg = 0;
            if (i >= protectedA)
            {
                var a = normalized.Slice(2 * i * dim, dim);
                for (int j = protectedB; j < tb; j++)
                {
                    float s = Simd.Dot(a, normalized.Slice((2 * j + 1) * dim, dim));
                    if (s > max)
                    {
                        max = s;
                        arg = j;
                    }
                }
            }
            bestValue[i] = max;
            bestIdx[i] = arg;
        }
    }

    // MatchRows four set-B tokens at a time. Each similarity is Simd.Dot's sum exactly (one vector accumulator over the
    // row in order from zero, then Vector512.Sum), and the four are compared in index order, so the values and the
    // choice are MatchRows' bit for bit; one dot product is a chain of dependent FMAs and a horizontal sum, and four
    // independent chains side by side keep the core busy where one at a time left it waiting.
    [MethodImpl(Jit.Hot)]
    private static unsafe void MatchRows512(ReadOnlySpan<float> normalized, int dim, int i0, int i1, int protectedA, int protectedB,
        int tb, Span<float> bestValue, Span<int> bestIdx)
    {
        if ((long)(2 * tb) * dim > normalized.Length || (long)(2 * i1 - 1) * dim > normalized.Length)
            throw new ArgumentException("the metric holds fewer tokens than the match reads", nameof(normalized));
        long step = 2L * dim; // from one set-B token to the next
        float* scores = stackalloc float[16];
        fixed (float* m = normalized)
        {
            for (int i = i0; i < i1; i++)
            {
                float max = float.NegativeInfinity;
                int arg = 0;
                if (i >= protectedA)
                {
                    float* a = m + 2L * i * dim;
                    int j = protectedB;
                    if (Avx512F.IsSupported)
                        for (; j + 16 <= tb; j += 16)
                            MatchSixteen(a, m + (2L * j + 1) * dim, step, dim, j, scores, ref max, ref arg);
                    for (; j + 4 <= tb; j += 4)
                    {
                        float* b0 = m + (2L * j + 1) * dim, b1 = b0 + step, b2 = b1 + step, b3 = b2 + step;
                        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
                        for (int e = 0; e < dim; e += 16)
                        {
                            var x = Vector512.Load(a + e);
                            s0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b0 + e), s0);
                            s1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b1 + e), s1);
                            s2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b2 + e), s2);
                            s3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b3 + e), s3);
                        }
                        float d0 = Vector512.Sum(s0), d1 = Vector512.Sum(s1), d2 = Vector512.Sum(s2), d3 = Vector512.Sum(s3);
                        if (d0 > max) { max = d0; arg = j; }
                        if (d1 > max) { max = d1; arg = j + 1; }
                        if (d2 > max) { max = d2; arg = j + 2; }
                        if (d3 > max) { max = d3; arg = j + 3; }
                    }
                    for (; j < tb; j++)
                    {
                        float* b = m + (2L * j + 1) * dim;
                        var acc = Vector512<float>.Zero;
                        for (int e = 0; e < dim; e += 16)
                            acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + e), Vector512.Load(b + e), acc);
                        float d = Vector512.Sum(acc);
                        if (d > max) { max = d; arg = j; }
                    }
                }
                bestValue[i] = max;
                bestIdx[i] = arg;
            }
        }
    }

    // Set-B tokens j0..j0+15 (the first at b, the next ones step floats apart) against the set-A row a: sixteen dot
    // products as in MatchRows512, their horizontal sums done together by Sum16, then compared in index order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void MatchSixteen(float* a, float* b, long step, int dim, int j0, float* scores, ref float max, ref int arg)
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        Vector512<float> s8 = default, s9 = default, s10 = default, s11 = default, s12 = default, s13 = default, s14 = default, s15 = default;
        for (int e = 0; e < dim; e += 16)
        {
            var x = Vector512.Load(a + e);
            float* p = b + e;
            s0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s0); p += step;
            s1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s1); p += step;
            s2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s2); p += step;
            s3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s3); p += step;
            s4 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s4); p += step;
            s5 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s5); p += step;
            s6 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s6); p += step;
            s7 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s7); p += step;
            s8 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s8); p += step;
            s9 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s9); p += step;
            s10 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s10); p += step;
            s11 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s11); p += step;
            s12 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s12); p += step;
            s13 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s13); p += step;
            s14 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s14); p += step;
            s15 = Vector512.FusedMultiplyAdd(x, Vector512.Load(p), s15);
        }
        var sums = Sum16(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15);
        // Most blocks hold nothing above the running maximum: skip the scalar scan then.
        if (!Vector512.GreaterThanAny(sums, Vector512.Create(max)))
            return;
        sums.Store(scores);
        for (int k = 0; k < 16; k++)
        {
            if (scores[k] > max)
            {
                max = scores[k];
                arg = j0 + k;
            }
        }
    }

    /// <summary>
    /// Lane k of the result is Vector512.Sum(vk), bit for bit. Vector512.Sum is a fixed pairwise tree: neighbours, then pairs
    /// of those within each 128-bit lane, then lanes 0 + 1 and 2 + 3, then the two halves (a test holds it to that); here
    /// each level is two shuffles and one add for several vectors at once, rather than a chain of shuffles per vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Sum16(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3,
        Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7, Vector512<float> v8, Vector512<float> v9,
        Vector512<float> v10, Vector512<float> v11, Vector512<float> v12, Vector512<float> v13, Vector512<float> v14, Vector512<float> v15)
    {
        // Within 128-bit lanes: [x0 + x1, x2 + x3, y0 + y1, y2 + y3], then the four lane sums of four vectors.
        var a = Pairs(Pairs(v0, v1), Pairs(v2, v3));
        var b = Pairs(Pairs(v4, v5), Pairs(v6, v7));
        var c = Pairs(Pairs(v8, v9), Pairs(v10, v11));
        var d = Pairs(Pairs(v12, v13), Pairs(v14, v15));
        // Across lanes: lane sums 0 + 1 and 2 + 3, then their total.
        return Lanes(Lanes(a, b), Lanes(c, d));

        static Vector512<float> Pairs(Vector512<float> x, Vector512<float> y) =>
            Avx512F.Shuffle(x, y, 0x88) + Avx512F.Shuffle(x, y, 0xDD);

        static Vector512<float> Lanes(Vector512<float> x, Vector512<float> y) =>
            Avx512F.Shuffle4x128(x, y, 0x88) + Avx512F.Shuffle4x128(x, y, 0xDD);
    }

    [MethodImpl(Jit.Hot)]
    public void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order)
    {
        var values = F(best);
        var result = I(order);
        Span<ulong> keys = setA <= 1024 ? stackalloc ulong[setA] : new ulong[setA];
        for (int b = 0; b < batch; b++)
        {
            var idx = result.AsSpan(b * setA, setA);
            // Descending by value, lower index first on ties: a total order, so any correct sort gives the same result.
            // It is sorted as one integer per token (the value's rank in float.CompareTo's order, complemented, above the
            // index): a primitive sort, several times faster than one through a comparison delegate.
            for (int i = 0; i < setA; i++)
                keys[i] = (ulong)~CompareRank(values[b * setA + i]) << 32 | (uint)i;
            keys.Sort();
            for (int i = 0; i < setA; i++)
                idx[i] = (int)(uint)keys[i];
            if (keepUnmergedInOrder)
                idx[r..].Sort();
        }
    }

    /// <summary>
    /// An unsigned integer in float.CompareTo's order: NaN below everything (and all NaNs equal), −0 equal to +0, the
    /// rest by value.
    /// </summary>
    internal static uint CompareRank(float value)
    {
        if (float.IsNaN(value))
            return 0;
        int bits = BitConverter.SingleToInt32Bits(value == 0f ? 0f : value);
        // Non-negative floats order as their bits with the sign bit set; negative ones as their bits complemented.
        return bits >= 0 ? (uint)bits | 0x8000_0000u : ~(uint)bits;
    }

    [MethodImpl(Jit.Hot)]
    public void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex, DeviceBuffer? weight,
        int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
    {
        int protectedA = (prefixTokens + 1) / 2, protectedB = prefixTokens / 2;
        var xs = F(x);
        var sizes = F(size);
        var weights = weight is null ? null : F(weight);
        var group = I(groups);
        var ord = I(order);
        var dstOf = I(bestIndex);
        var xo = F(xOut);
        var so = F(sizeOut);
        var go = I(groupsOut);
        int ta = (tokens + 1) / 2, tb = tokens / 2, kept = ta - r, newTokens = tokens - r;
        For(batch, 1, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            var newIndexOfA = new int[ta];
            var sources = new int[r];
            var weightSum = weights is null ? null : new float[newTokens];
            for (int b = start; b < end; b++)
            {
                var o = ord.AsSpan(b * ta, ta);
                // Prefix tokens return to their original positions 2k (A) and 2j + 1 (B); the rest follow in ToMe's order.
                [MethodImpl(Jit.Hot)]
                int NewIndexOfB(int j) => j < protectedB ? 2 * j + 1 : kept + j;
                for (int k = 0; k < kept; k++)
                    newIndexOfA[o[r + k]] = k < protectedA ? 2 * k : k + protectedB;
                for (int k = 0; k < r; k++)
                    newIndexOfA[o[k]] = NewIndexOfB(dstOf[b * ta + o[k]]);
                o[..r].CopyTo(sources);
                Array.Sort(sources);

                int inBase = b * tokens, outBase = b * newTokens;
                Accumulate(weights, weightSum);
                if (weightSum is not null)
                {
                    // ToMeCIS: a group whose scores sum to 0 has no preferred member; average it by size instead.
                    bool anyZero = false;
                    for (int t = 0; t < newTokens; t++)
                        anyZero |= !(weightSum[t] > 0);
                    if (anyZero)
                    {
                        var rows = xo.AsSpan(outBase * channels, newTokens * channels).ToArray();
                        Accumulate(null, null);
                        for (int t = 0; t < newTokens; t++)
                            if (weightSum[t] > 0)
                                rows.AsSpan(t * channels, channels).CopyTo(xo.AsSpan((outBase + t) * channels, channels));
                    }
                }

                for (int g = 0; g < originalTokens; g++)
                {
                    int current = group[b * originalTokens + g];
                    go[b * originalTokens + g] = (current & 1) == 0 ? newIndexOfA[current / 2] : NewIndexOfB(current / 2);
                }

                // ToMe's merge_wavg: sum w·x into each destination, add sizes, divide (w = size unless weights are given).
                // Sources are added in ascending set-A order so the result never depends on how the ranking was computed.
                [MethodImpl(Jit.Hot)]
                void Accumulate(AlignedArray<float>? w, float[]? wSum)
                {
                    for (int k = 0; k < kept; k++)
                    {
                        int a = ord[b * ta + r + k];
                        Weighted(inBase + 2 * a, outBase + newIndexOfA[a], w, wSum);
                    }
                    for (int j = 0; j < tb; j++)
                        Weighted(inBase + 2 * j + 1, outBase + NewIndexOfB(j), w, wSum);
                    foreach (int i in sources)
                    {
                        int from = inBase + 2 * i, dst = outBase + newIndexOfA[i];
                        float s = sizes[from], ws = w is null ? s : w[from];
                        Simd.MultiplyAdd(xs.AsSpan(from * channels, channels), ws, xo.AsSpan(dst * channels, channels), xo.AsSpan(dst * channels, channels));
                        so[dst] += s;
                        if (wSum is not null)
                            wSum[dst - outBase] += ws;
                    }
                    for (int t = 0; t < newTokens; t++)
                        Simd.Divide(xo.AsSpan((outBase + t) * channels, channels), wSum is null ? so[outBase + t] : wSum[t], xo.AsSpan((outBase + t) * channels, channels));
                }

                [MethodImpl(Jit.Hot)]
                void Weighted(int from, int to, AlignedArray<float>? w, float[]? wSum)
                {
                    float s = sizes[from], ws = w is null ? s : w[from];
                    Simd.Multiply(xs.AsSpan(from * channels, channels), ws, xo.AsSpan(to * channels, channels));
                    so[to] = s;
                    if (wSum is not null)
                        wSum[to - outBase] = ws;
                }
            }
        });
    }
}
