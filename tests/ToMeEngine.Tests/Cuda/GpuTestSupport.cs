using ToMe.Backends.Cuda;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>GPU tests: a context on device 0, or a skip (a failure with TOME_REQUIRE_GPU=1) naming why not.</summary>
internal static class Gpu
{
    public static CudaContext Context()
    {
        GpuRequirement.RequireDevice();
        NvrtcRequirement.Require();
        return CudaContext.Create(0);
    }

    /// <summary>|actual − expected| ≤ atol + rtol·|expected| everywhere (see <see cref="Close"/>).</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float atol, float rtol, string what) =>
        Close.AssertAll(expected, actual, atol, rtol, what);

    public static float[] Random(int length, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (var i = 0; i < length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }
}

/// <summary>Plain CPU twins of the glue kernels, in double where it matters.</summary>
internal static class CpuTwins
{
    public static float GeluErf(double x) => (float)(0.5 * x * (1 + Erf(x / Math.Sqrt(2))));

    // Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, ample for fp32 comparisons.
    public static double Erf(double x)
    {
        var sign = Math.Sign(x);
        x = Math.Abs(x);
        var t = 1 / (1 + 0.3275911 * x);
        var poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        return sign * (1 - poly * Math.Exp(-x * x));
    }

    /// <summary>y[b][m][n] = Σk x[b][m][k] · w[b][n][k] (row-major, weight stored [out, in]).</summary>
    public static float[] LinearBatched(float[] x, float[] w, int batch, int rows, int inFeatures, int outFeatures, float[]? bias = null)
    {
        var y = new float[batch * rows * outFeatures];
        for (var b = 0; b < batch; b++)
            for (var m = 0; m < rows; m++)
                for (var n = 0; n < outFeatures; n++)
                {
                    double sum = bias?[n] ?? 0;
                    for (var k = 0; k < inFeatures; k++)
                        sum += (double)x[(b * rows + m) * inFeatures + k] * w[(b * outFeatures + n) * inFeatures + k];
                    y[(b * rows + m) * outFeatures + n] = (float)sum;
                }
        return y;
    }
}
