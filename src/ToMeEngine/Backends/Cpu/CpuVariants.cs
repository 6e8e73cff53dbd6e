using System.Runtime.CompilerServices;
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
    private static void Normalize(ReadOnlySpan<float> metric, int tokens, int dim, Span<float> normalized)
    {
        for (int t = 0; t < tokens; t++)
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
}
