using ToMe.Model;

namespace ToMe.Tests.Merging;

/// <summary>What a merge callback of <see cref="ReferenceVit"/> sees of one image in one layer.</summary>
internal sealed record LayerState(int Layer, int Image, double[][] Metric, double[] Size, double[] ClassAttention, double[][] ValueMean);

/// <summary>A merge decision: the output token of every token (−1: dropped) and how many output tokens there are.</summary>
internal sealed record Assignment(int[] Dest, int NewTokens, double[]? Weights = null);

/// <summary>
/// A dense double-precision ViT written straight from timm's definition and SPEC-merging, one image at a time, sharing
/// nothing with the engine's code path: the yardstick the merge variants are checked against.
/// </summary>
internal sealed class ReferenceVit(ModelWeights weights)
{
    private readonly ModelConfig config = weights.Config;

    public (double[] Logits, int[] Groups, double[] Size, int[] TokensPerLayer) Run(
        float[] images, int image, bool propAttn, Func<LayerState, Assignment?> merge)
    {
        int s = config.ImageSize, ps = config.PatchSize, g = config.GridSize, c = config.EmbedDim, p = config.PrefixTokens;
        int t0 = config.Tokens;
        var x = new List<double[]>();
        // timm's token order: [cls, dist, patches] or [cls, reg..., patches].
        var prefix = new[] { weights.ClassToken, weights.DistToken }.Where(v => v is not null).ToList();
        for (int r = 0; r < config.RegTokens; r++)
            prefix.Add(weights.RegTokens![(r * c)..((r + 1) * c)]);
        foreach (var v in prefix)
            x.Add(v!.Select(f => (double)f).ToArray());
        int offset = image * 3 * s * s;
        for (int py = 0; py < g; py++)
        {
            for (int px = 0; px < g; px++)
            {
                var e = new double[c];
                for (int o = 0; o < c; o++)
                {
                    double acc = weights.PatchBias[o];
                    for (int ch = 0; ch < 3; ch++)
                        for (int y = 0; y < ps; y++)
                            for (int xx = 0; xx < ps; xx++)
                                acc += (double)weights.PatchWeight[((o * 3 + ch) * ps + y) * ps + xx] * images[offset + (ch * s + py * ps + y) * s + px * ps + xx];
                    e[o] = acc;
                }
                x.Add(e);
            }
        }
        // no_embed_class: the position embedding has rows for the patches only, and the prefix tokens get none.
        int positioned = config.NoEmbedClass ? prefix.Count : 0;
        for (int t = positioned; t < t0; t++)
            for (int i = 0; i < c; i++)
                x[t][i] += weights.PosEmbed[(t - positioned) * c + i];

        var size = Enumerable.Repeat(1.0, t0).ToArray();
        var groups = Enumerable.Range(0, t0).ToArray();
        var tokensPerLayer = new int[config.Depth];
        for (int l = 0; l < config.Depth; l++)
        {
            var blk = weights.Blocks[l];
            tokensPerLayer[l] = x.Count;
            var (attn, metric, classAttention, valueMean) = Attention(x.Select(v => LayerNorm(v, blk.Norm1Weight, blk.Norm1Bias)).ToArray(), blk, propAttn ? size : null);
            for (int t = 0; t < x.Count; t++)
                Add(x[t], Scale(Linear(attn[t], blk.ProjWeight, blk.ProjBias), blk.LayerScale1));

            if (merge(new LayerState(l, image, metric, size, classAttention, valueMean)) is { } a)
            {
                var next = new List<double[]>();
                var nextSize = new double[a.NewTokens];
                var weightSum = new double[a.NewTokens];
                for (int j = 0; j < a.NewTokens; j++)
                    next.Add(new double[c]);
                for (int t = 0; t < x.Count; t++)
                {
                    int j = a.Dest[t];
                    if (j < 0)
                        continue;
                    double w = a.Weights?[t] ?? size[t];
                    for (int i = 0; i < c; i++)
                        next[j][i] += w * x[t][i];
                    nextSize[j] += size[t];
                    weightSum[j] += w;
                }
                for (int j = 0; j < a.NewTokens; j++)
                    for (int i = 0; i < c; i++)
                        next[j][i] = weightSum[j] > 0 ? next[j][i] / weightSum[j] : 0;
                groups = groups.Select(h => h < 0 ? -1 : a.Dest[h]).ToArray();
                x = next;
                size = nextSize;
            }

            foreach (var v in x)
            {
                var h = Linear(LayerNorm(v, blk.Norm2Weight, blk.Norm2Bias), blk.Fc1Weight, blk.Fc1Bias);
                for (int i = 0; i < h.Length; i++)
                    h[i] = 0.5 * h[i] * (1 + Erf(h[i] / Math.Sqrt(2)));
                Add(v, Scale(Linear(h, blk.Fc2Weight, blk.Fc2Bias), blk.LayerScale2));
            }
        }
        return (Head(x, size), groups, size, tokensPerLayer);
    }

    private double[] Head(List<double[]> x, double[] size)
    {
        int c = config.EmbedDim, k = config.NumClasses;
        if (config.GlobalPool == GlobalPool.Token)
        {
            var cls = Linear(LayerNorm(x[0], weights.NormWeight!, weights.NormBias!), weights.HeadWeight, weights.HeadBias);
            if (!config.Distilled)
                return cls;
            var dist = Linear(LayerNorm(x[1], weights.NormWeight!, weights.NormBias!), weights.HeadDistWeight!, weights.HeadDistBias!);
            return cls.Select((v, i) => (v + dist[i]) / 2).ToArray();
        }
        var pooled = new double[c];
        double total = 0;
        for (int t = config.PrefixTokens; t < x.Count; t++)
        {
            var v = weights.NormWeight is null ? x[t] : LayerNorm(x[t], weights.NormWeight, weights.NormBias!);
            for (int i = 0; i < c; i++)
                pooled[i] += size[t] * v[i];
            total += size[t];
        }
        for (int i = 0; i < c; i++)
            pooled[i] /= total;
        if (weights.FcNormWeight is not null)
            pooled = LayerNorm(pooled, weights.FcNormWeight, weights.FcNormBias!);
        return Linear(pooled, weights.HeadWeight, weights.HeadBias).Take(k).ToArray();
    }

    private (double[][] Out, double[][] Metric, double[] ClassAttention, double[][] ValueMean) Attention(double[][] h, BlockWeights blk, double[]? size)
    {
        int n = h.Length, heads = config.NumHeads, d = config.HeadDim, c = config.EmbedDim;
        var qkv = h.Select(v => Linear(v, blk.QkvWeight, blk.QkvBias)).ToArray();
        var output = h.Select(_ => new double[c]).ToArray();
        var metric = h.Select(_ => new double[d]).ToArray();
        var valueMean = h.Select(_ => new double[d]).ToArray();
        var classAttention = new double[n];
        double scale = 1 / Math.Sqrt(d);
        for (int hd = 0; hd < heads; hd++)
        {
            for (int i = 0; i < n; i++)
            {
                var logits = new double[n];
                for (int j = 0; j < n; j++)
                {
                    double dot = 0;
                    for (int e = 0; e < d; e++)
                        dot += qkv[i][hd * d + e] * qkv[j][c + hd * d + e];
                    logits[j] = dot * scale + (size is null ? 0 : Math.Log(size[j]));
                }
                double max = logits.Max(), sum = 0;
                for (int j = 0; j < n; j++)
                    sum += logits[j] = Math.Exp(logits[j] - max);
                for (int j = 0; j < n; j++)
                {
                    double pij = logits[j] / sum;
                    if (i == 0)
                        classAttention[j] += pij / heads;
                    for (int e = 0; e < d; e++)
                        output[i][hd * d + e] += pij * qkv[j][2 * c + hd * d + e];
                }
            }
            for (int j = 0; j < n; j++)
                for (int e = 0; e < d; e++)
                {
                    metric[j][e] += qkv[j][c + hd * d + e] / heads;
                    valueMean[j][e] += qkv[j][2 * c + hd * d + e] / heads;
                }
        }
        return (output, metric, classAttention, valueMean);
    }

    private static double[] LayerNorm(double[] x, float[] gamma, float[] beta)
    {
        double mean = x.Average();
        double variance = x.Select(v => (v - mean) * (v - mean)).Average();
        double inv = 1 / Math.Sqrt(variance + 1e-6);
        return x.Select((v, i) => (v - mean) * inv * gamma[i] + beta[i]).ToArray();
    }

    // Weights widened to double once per tensor: the conversion would otherwise dominate the reference's run time.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<float[], double[]> widened = new();

    private static double[] Linear(double[] x, float[] weight, float[] b)
    {
        var w = widened.GetValue(weight, f => Array.ConvertAll(f, v => (double)v));
        var y = new double[b.Length];
        for (int o = 0; o < y.Length; o++)
        {
            var row = w.AsSpan(o * x.Length, x.Length);
            double acc = b[o];
            for (int i = 0; i < row.Length; i++)
                acc += row[i] * x[i];
            y[o] = acc;
        }
        return y;
    }

    private static double[] Scale(double[] x, float[]? gamma) => gamma is null ? x : x.Select((v, i) => v * gamma[i]).ToArray();

    private static void Add(double[] x, double[] y)
    {
        for (int i = 0; i < x.Length; i++)
            x[i] += y[i];
    }

    /// <summary>erf by its Maclaurin series below 3 and the continued fraction of erfc above (both to ~1e-14).</summary>
    public static double Erf(double x)
    {
        double a = Math.Abs(x);
        double r;
        if (a < 3)
        {
            double term = a, sum = a;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
            {
                term *= -a * a / n;
                sum += term / (2 * n + 1);
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            double f = 0;
            for (int n = 60; n >= 1; n--)
                f = n / 2.0 / (a + f);
            r = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / (a + f);
        }
        return x < 0 ? -r : r;
    }

    /// <summary>Metric rows L2-normalized (a zero row stays zero, as in the engine).</summary>
    public static double[][] Normalize(double[][] metric) => metric.Select(v =>
    {
        double norm = Math.Sqrt(v.Sum(e => e * e));
        return norm > 0 ? v.Select(e => e / norm).ToArray() : new double[v.Length];
    }).ToArray();

    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += a[i] * b[i];
        return s;
    }
}
