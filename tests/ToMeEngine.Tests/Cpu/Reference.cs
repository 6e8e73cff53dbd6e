namespace ToMe.Tests.Cpu;

/// <summary>Naive float64 references for the CPU compute core.</summary>
internal static class Reference
{
    public static float[] Random(int length, int seed, float scale = 1f, float offset = 0f)
    {
        var rng = new Random(seed);
        var v = new float[length];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = offset + scale * (float)(2 * rng.NextDouble() - 1);
        }
        return v;
    }

    /// <summary>erf to ~1e-15: Taylor series below 3, Lentz-free backward continued fraction for erfc above.</summary>
    public static double Erf(double x)
    {
        if (x < 0)
        {
            return -Erf(-x);
        }
        return x < 3 ? ErfSeries(x) : 1 - ErfcFraction(x);
    }

    /// <summary>1 + erf(u) without cancellation in the negative tail.</summary>
    public static double OnePlusErf(double u) => u >= -3 ? 1 + Erf(u) : ErfcFraction(-u);

    public static double Gelu(double x) => 0.5 * x * OnePlusErf(x / Math.Sqrt(2));

    private static double ErfSeries(double x)
    {
        // erf(x) = 2/√π Σ (−1)ⁿ x^(2n+1) / (n!(2n+1))
        double z = x * x, term = x, sum = x;
        for (int n = 1; n < 200; n++)
        {
            term *= -z / n;
            double add = term / (2 * n + 1);
            sum += add;
            if (Math.Abs(add) < 1e-17 * Math.Abs(sum))
            {
                break;
            }
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    private static double ErfcFraction(double x)
    {
        // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …))))
        double f = x;
        for (int n = 200; n >= 1; n--)
        {
            f = x + n / 2.0 / f;
        }
        return Math.Exp(-x * x) / (Math.Sqrt(Math.PI) * f);
    }

    /// <summary>C = A·Wᵀ (+ bias) in double; also returns Σ|a·w| per element for the error bound.</summary>
    // a: [m, k]; w: [n, k]; bias: [n] or null
    public static (double[] Value, double[] Magnitude) Linear(float[] a, float[] w, float[]? bias, int m, int n, int k)
    {
        var value = new double[m * n];
        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0, mag = 0;
                for (int p = 0; p < k; p++)
                {
                    double t = (double)a[i * k + p] * w[j * k + p];
                    s += t;
                    mag += Math.Abs(t);
                }
                if (bias != null)
                {
                    s += bias[j];
                    mag += Math.Abs(bias[j]);
                }
                value[i * n + j] = s;
                magnitude[i * n + j] = mag;
            }
        }
        return (value, magnitude);
    }

    /// <summary>
    /// Float32 summation bound: a few ε·√K of the absolute sum (random rounding grows like √K), plus a relative
    /// slack on the result for the epilogue.
    /// </summary>
    public static double Tolerance(double reference, double magnitude, int k) =>
        1e-7 + 4e-6 * Math.Abs(reference) + 4 * 6e-8 * Math.Sqrt(Math.Max(k, 1)) * magnitude;

    public static void AssertClose(ReadOnlySpan<float> actual, double[] expected, double[] magnitude, int k, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = Tolerance(expected[i], magnitude[i], k);
            if (!(Math.Abs(actual[i] - expected[i]) <= tol))
            {
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, expected {expected[i]:R} (tolerance {tol:G3})");
            }
        }
    }

    public static void AssertUntouched(ReadOnlySpan<float> guard, float sentinel, string what)
    {
        for (int i = 0; i < guard.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(guard[i]) != BitConverter.SingleToInt32Bits(sentinel))
            {
                Assert.Fail($"{what}: sentinel {i} was overwritten with {guard[i]:R}");
            }
        }
    }
}
