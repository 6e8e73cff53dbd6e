using System.Numerics.Tensors;

namespace ToMe.Backends.Cpu;

/// <summary>Row-wise float32 math of the CPU backend.</summary>
internal static class CpuRowOps
{
    /// <summary>LayerNorm of one row (biased variance, as PyTorch), accumulated in double so rounding stays below float's.</summary>
    public static void LayerNormRow(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, Span<float> y)
    {
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
            sum += x[i];
        double mean = sum / x.Length;
        double sq = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double d = x[i] - mean;
            sq += d * d;
        }
        double inv = 1.0 / Math.Sqrt(sq / x.Length + eps);
        for (int i = 0; i < x.Length; i++)
            y[i] = (float)((x[i] - mean) * inv) * gamma[i] + beta[i];
    }

    /// <summary>erf(x) for float arguments (W. J. Cody's rational approximations, double precision).</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double r;
        if (ax < 0.5)
        {
            double t = x * x;
            double num = (((0.185777706184603153 * t + 3.16112374387056560) * t + 113.864154151050156) * t + 377.485237685302021) * t + 3209.37758913846947;
            double den = (((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t + 2844.23683343917062;
            return x * num / den;
        }
        if (ax < 4.0)
        {
            double num = (((((((2.15311535474403846e-8 * ax + 0.564188496988670089) * ax + 8.88314979438837594) * ax + 66.1191906371416295) * ax
                + 298.635138197400131) * ax + 881.952221241769090) * ax + 1712.04761263407058) * ax + 2051.07837782607147) * ax + 1230.33935479799725;
            double den = (((((((ax + 15.7449261107098347) * ax + 117.693950891312499) * ax + 537.181101862009858) * ax + 1621.38957456669019) * ax
                + 3290.79923573345963) * ax + 4362.61909014324716) * ax + 3439.36767414372164) * ax + 1230.33935480374942;
            r = 1.0 - Math.Exp(-ax * ax) * num / den;
        }
        else
        {
            double z = 1.0 / (ax * ax);
            double num = ((((0.0163153871373020978 * z + 0.305326634961232344) * z + 0.360344899949804439) * z + 0.125781726111229246) * z + 0.0160837851487422766) * z + 6.58749161529837803e-4;
            double den = ((((z + 2.56852019228982242) * z + 1.87295284992346725) * z + 0.527905102951428412) * z + 0.0605183413124413191) * z + 2.33520497626869185e-3;
            r = 1.0 - Math.Exp(-ax * ax) / ax * (0.564189583547756287 - z * num / den);
        }
        return x < 0 ? -r : r;
    }

    /// <summary>Exact (erf) GELU in place.</summary>
    public static void GeluInPlace(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(0.5 * x[i] * (1.0 + Erf(x[i] * 0.70710678118654752)));
    }

    /// <summary>Softmax of a row in place after adding a per-key bias (log size); -inf bias gives weight exactly 0.</summary>
    public static void SoftmaxWithBias(Span<float> row, ReadOnlySpan<float> bias)
    {
        if (!bias.IsEmpty)
            TensorPrimitives.Add(row, bias, row);
        float max = TensorPrimitives.Max(row);
        if (float.IsNegativeInfinity(max))
        {
            row.Clear(); // every key masked: no attention rather than NaN
            return;
        }
        TensorPrimitives.Subtract(row, max, row);
        TensorPrimitives.Exp(row, row);
        float sum = TensorPrimitives.Sum(row);
        TensorPrimitives.Divide(row, sum, row);
    }
}
