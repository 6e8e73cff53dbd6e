using System.Numerics.Tensors;

namespace ToMe.Backends.Cpu;

internal sealed partial class CpuBackend
{
    public void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, bool classToken, bool distillToken,
        DeviceBuffer best, DeviceBuffer bestIndex)
    {
        var m = F(metric);
        var bestValue = F(best);
        var bestIdx = I(bestIndex);
        int ta = (tokens + 1) / 2, tb = tokens / 2;
        For(batch, 1, (start, end) =>
        {
            var normalized = new float[tokens * dim];
            for (int b = start; b < end; b++)
            {
                for (int t = 0; t < tokens; t++)
                {
                    var src = m.AsSpan((b * tokens + t) * dim, dim);
                    var dst = normalized.AsSpan(t * dim, dim);
                    float norm = TensorPrimitives.Norm(src);
                    // The reference divides by the norm with no epsilon; a zero metric stays zero (similarity 0).
                    if (norm > 0)
                        TensorPrimitives.Divide(src, norm, dst);
                    else
                        dst.Clear();
                }
                for (int i = 0; i < ta; i++)
                {
                    float max = float.NegativeInfinity;
                    int arg = 0;
                    if (!(classToken && i == 0))
                    {
                        var a = normalized.AsSpan(2 * i * dim, dim);
                        for (int j = distillToken ? 1 : 0; j < tb; j++)
                        {
                            float s = TensorPrimitives.Dot(a, normalized.AsSpan((2 * j + 1) * dim, dim));
                            if (s > max)
                            {
                                max = s;
                                arg = j;
                            }
                        }
                    }
                    bestValue[b * ta + i] = max;
                    bestIdx[b * ta + i] = arg;
                }
            }
        });
    }

    public void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order)
    {
        var values = F(best);
        var result = I(order);
        for (int b = 0; b < batch; b++)
        {
            int offset = b * setA;
            var idx = result.AsSpan(b * setA, setA);
            for (int i = 0; i < setA; i++)
                idx[i] = i;
            // Descending by value, lower index first on ties: a total order, so any correct sort gives the same result.
            idx.Sort((x, y) => values[offset + y].CompareTo(values[offset + x]) is var cmp && cmp != 0 ? cmp : x.CompareTo(y));
            if (keepUnmergedInOrder)
                idx[r..].Sort();
        }
    }

    public void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex,
        int batch, int tokens, int channels, int originalTokens, int r, bool distillToken,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
    {
        var xs = F(x);
        var sizes = F(size);
        var group = I(groups);
        var ord = I(order);
        var dstOf = I(bestIndex);
        var xo = F(xOut);
        var so = F(sizeOut);
        var go = I(groupsOut);
        int ta = (tokens + 1) / 2, tb = tokens / 2, kept = ta - r, newTokens = tokens - r;
        For(batch, 1, (start, end) =>
        {
            var newIndexOfA = new int[ta];
            var sources = new int[r];
            for (int b = start; b < end; b++)
            {
                var o = ord.AsSpan(b * ta, ta);
                int NewIndexOfB(int j) => distillToken ? (j == 0 ? 1 : kept + j) : kept + j;
                for (int k = 0; k < kept; k++)
                    newIndexOfA[o[r + k]] = distillToken && k > 0 ? k + 1 : k;
                for (int k = 0; k < r; k++)
                    newIndexOfA[o[k]] = NewIndexOfB(dstOf[b * ta + o[k]]);

                int inBase = b * tokens, outBase = b * newTokens;
                // ToMe's merge_wavg: sum size·x into each destination, add sizes, divide. Sources are added in ascending
                // set-A order so the result never depends on how the ranking was computed.
                for (int k = 0; k < kept; k++)
                    Weighted(inBase + 2 * o[r + k], outBase + newIndexOfA[o[r + k]]);
                for (int j = 0; j < tb; j++)
                    Weighted(inBase + 2 * j + 1, outBase + NewIndexOfB(j));
                o[..r].CopyTo(sources);
                Array.Sort(sources);
                foreach (int i in sources)
                {
                    int dst = outBase + newIndexOfA[i];
                    float s = sizes[inBase + 2 * i];
                    TensorPrimitives.MultiplyAdd(xs.AsSpan((inBase + 2 * i) * channels, channels), s, xo.AsSpan(dst * channels, channels), xo.AsSpan(dst * channels, channels));
                    so[dst] += s;
                }
                for (int t = 0; t < newTokens; t++)
                    TensorPrimitives.Divide(xo.AsSpan((outBase + t) * channels, channels), so[outBase + t], xo.AsSpan((outBase + t) * channels, channels));

                for (int g = 0; g < originalTokens; g++)
                {
                    int current = group[b * originalTokens + g];
                    go[b * originalTokens + g] = (current & 1) == 0 ? newIndexOfA[current / 2] : NewIndexOfB(current / 2);
                }
            }

            void Weighted(int from, int to)
            {
                float s = sizes[from];
                TensorPrimitives.Multiply(xs.AsSpan(from * channels, channels), s, xo.AsSpan(to * channels, channels));
                so[to] = s;
            }
        });
    }
}
