using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ToMe.Merging;

namespace ToMe.Backends.Cpu;

/// <summary>The ops of the merging variants (kth, random, ToMato, ToMeCIS); semantics in IBackend and SPEC-merging §3.</summary>
internal sealed partial class CpuBackend
{
    [MethodImpl(Jit.Hot)]
    public void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score)
    {
        var input = F(qkv);
        var attention = F(classAttention);
        var result = F(score);
        int c = heads * headDim, stride = 3 * c;
        For(batch * tokens, 64, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            var mean = new float[headDim];
            for (int row = start; row < end; row++)
            {
                // Heads summed in a fixed order, then averaged: the same arithmetic as the key mean in Attention.
                input.AsSpan(row * stride + 2 * c, headDim).CopyTo(mean);
                for (int h = 1; h < heads; h++)
                    Simd.Add(mean, input.AsSpan(row * stride + 2 * c + h * headDim, headDim), mean);
                Simd.Divide(mean, heads, mean);
                result[row] = attention[row] * Simd.Norm(mean);
            }
        });
    }

    [MethodImpl(Jit.Hot)]
    public void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs,
        DeviceBuffer dest)
    {
        var m = F(metric);
        var roles = I(role);
        var result = I(dest);
        For(batch, 1, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            var normalized = new float[tokens * dim];
            for (int b = start; b < end; b++)
            {
                Normalize(m.AsSpan(b * tokens * dim, tokens * dim), tokens, dim, normalized);
                var rb = roles.AsSpan(b * tokens, tokens);
                var db = result.AsSpan(b * tokens, tokens);
                for (int t = 0; t < tokens; t++)
                {
                    if (rb[t] != TokenRoles.Source)
                    {
                        db[t] = rb[t] >= 0 ? rb[t] : -1;
                        continue;
                    }
                    var a = normalized.AsSpan(t * dim, dim);
                    float max = float.NegativeInfinity;
                    int arg = -1;
                    for (int u = 0; u < tokens; u++)
                    {
                        if (rb[u] < protectedOutputs)
                            continue;
                        float s = Simd.Dot(a, normalized.AsSpan(u * dim, dim));
                        if (s > max || arg < 0)
                        {
                            max = s;
                            arg = u;
                        }
                    }
                    db[t] = arg < 0 ? -1 : rb[arg];
                }
            }
        });
    }

    [MethodImpl(Jit.Hot)]
    public void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth,
        float threshold, DeviceBuffer dest, DeviceBuffer counts)
    {
        int patches = gridHeight * gridWidth;
        if (tokens != prefixTokens + patches)
            throw new ArgumentException($"GridComponents: {tokens} tokens, expected {prefixTokens} prefix + {gridHeight}×{gridWidth} patches");
        var m = F(metric);
        var result = I(dest);
        var count = I(counts);
        For(batch, 1, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            var normalized = new float[tokens * dim];
            var parent = new int[patches];
            var component = new int[patches];
            for (int b = start; b < end; b++)
            {
                Normalize(m.AsSpan(b * tokens * dim, tokens * dim), tokens, dim, normalized);
                int first = prefixTokens * dim;
                float Similarity(int i, int j) => Simd.Dot(normalized.AsSpan(first + i * dim, dim), normalized.AsSpan(first + j * dim, dim));
                TokenComponents.Reset(parent);
                for (int y = 0; y < gridHeight; y++)
                {
                    for (int x = 0; x < gridWidth; x++)
                    {
                        int i = y * gridWidth + x;
                        if (x + 1 < gridWidth && Similarity(i, i + 1) > threshold)
                            TokenComponents.Union(parent, i, i + 1);
                        if (y + 1 < gridHeight && Similarity(i, i + gridWidth) > threshold)
                            TokenComponents.Union(parent, i, i + gridWidth);
                    }
                }
                int components = TokenComponents.Number(parent, component);
                var db = result.AsSpan(b * tokens, tokens);
                for (int t = 0; t < prefixTokens; t++)
                    db[t] = t;
                for (int i = 0; i < patches; i++)
                    db[prefixTokens + i] = prefixTokens + component[i];
                count[b] = prefixTokens + components;
            }
        });
    }

    [MethodImpl(Jit.Hot)]
    public void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest,
        int batch, int tokens, int channels, int originalTokens, int newTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
    {
        var xs = F(x);
        var sizes = F(size);
        var group = I(groups);
        var destination = I(dest);
        var xo = F(xOut);
        var so = F(sizeOut);
        var go = I(groupsOut);
        For(batch, 1, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            for (int b = start; b < end; b++)
            {
                xo.AsSpan(b * newTokens * channels, newTokens * channels).Clear();
                so.AsSpan(b * newTokens, newTokens).Clear();
                // One pass in ascending token order fixes every group's summation order, whatever produced dest.
                for (int t = 0; t < tokens; t++)
                {
                    int j = destination[b * tokens + t];
                    if (j < 0)
                        continue;
                    if (j >= newTokens)
                        throw new ArgumentException($"MergeAssigned: token {t} of image {b} goes to {j}, beyond {newTokens} output tokens");
                    int from = b * tokens + t, to = b * newTokens + j;
                    Simd.MultiplyAdd(xs.AsSpan(from * channels, channels), sizes[from], xo.AsSpan(to * channels, channels), xo.AsSpan(to * channels, channels));
                    so[to] += sizes[from];
                }
                for (int j = 0; j < newTokens; j++)
                {
                    int to = b * newTokens + j;
                    if (so[to] > 0)
                        Simd.Divide(xo.AsSpan(to * channels, channels), so[to], xo.AsSpan(to * channels, channels));
                }
                for (int g = 0; g < originalTokens; g++)
                {
                    int current = group[b * originalTokens + g];
                    go[b * originalTokens + g] = current < 0 ? -1 : destination[b * tokens + current];
                }
            }
        });
    }

    /// <summary>L2-normalizes each row of the metric; the reference has no epsilon, so a zero row stays zero (similarity 0).</summary>
    [MethodImpl(Jit.Hot)]
    internal static void Normalize(ReadOnlySpan<float> metric, int tokens, int dim, Span<float> normalized)
    {
        int t = 0;
        if (Vector512.IsHardwareAccelerated && dim % 16 == 0)
            t = Normalize16Rows(metric, tokens, dim, normalized);
        for (; t < tokens; t++)
        {
            var src = metric.Slice(t * dim, dim);
            var dst = normalized.Slice(t * dim, dim);
            float norm = Simd.Norm(src);
            if (norm > 0)
                Simd.Divide(src, norm, dst);
            else
                dst.Clear();
        }
    }

    // Normalize for dim a multiple of 16, sixteen rows at a time: each row's sum of squares accumulated as Simd.Dot does,
    // the sixteen horizontal sums together by Sum16 and the square roots as one vector (both bit for bit the per-row
    // values), then each row divided by its norm as Simd.Divide does. Per row, the horizontal sum and the square root
    // were a dependency chain as long as the rest of the row's work. Returns the rows done, a multiple of 16.
    [MethodImpl(Jit.Hot)]
    private static unsafe int Normalize16Rows(ReadOnlySpan<float> metric, int tokens, int dim, Span<float> normalized)
    {
        int blocks = tokens / 16;
        if ((long)tokens * dim > metric.Length || (long)tokens * dim > normalized.Length)
            throw new ArgumentException("the metric holds fewer rows than asked for", nameof(metric));
        float* norms = stackalloc float[16];
        fixed (float* m0 = metric, n0 = normalized)
        {
            for (int blk = 0; blk < blocks; blk++)
            {
                float* src = m0 + (long)blk * 16 * dim, dst = n0 + (long)blk * 16 * dim;
                Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
                Vector512<float> s8 = default, s9 = default, s10 = default, s11 = default, s12 = default, s13 = default, s14 = default, s15 = default;
                for (int e = 0; e < dim; e += 16)
                {
                    float* p = src + e;
                    s0 = Square(p, s0); p += dim; s1 = Square(p, s1); p += dim; s2 = Square(p, s2); p += dim; s3 = Square(p, s3); p += dim;
                    s4 = Square(p, s4); p += dim; s5 = Square(p, s5); p += dim; s6 = Square(p, s6); p += dim; s7 = Square(p, s7); p += dim;
                    s8 = Square(p, s8); p += dim; s9 = Square(p, s9); p += dim; s10 = Square(p, s10); p += dim; s11 = Square(p, s11); p += dim;
                    s12 = Square(p, s12); p += dim; s13 = Square(p, s13); p += dim; s14 = Square(p, s14); p += dim; s15 = Square(p, s15);
                }
                Vector512.Sqrt(Sum16(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15)).Store(norms);
                for (int k = 0; k < 16; k++, src += dim, dst += dim)
                {
                    float norm = norms[k];
                    if (norm > 0)
                    {
                        var n = Vector512.Create(norm);
                        for (int e = 0; e < dim; e += 16)
                            (Vector512.Load(src + e) / n).Store(dst + e);
                    }
                    else
                    {
                        for (int e = 0; e < dim; e += 16)
                            Vector512<float>.Zero.Store(dst + e);
                    }
                }
            }
        }
        return blocks * 16;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<float> Square(float* p, Vector512<float> acc)
        {
            var x = Vector512.Load(p);
            return Vector512.FusedMultiplyAdd(x, x, acc);
        }
    }
}
