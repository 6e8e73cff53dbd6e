using System.Numerics;

namespace ToMe.Imaging;

/// <summary>
/// Checks images handed over already preprocessed (tensors a caller made, e.g. the inference protocol's
/// <c>pixel_values</c>). Normalized pixels are a few units in size; a value that is not finite, or beyond
/// <see cref="MaxMagnitude"/>, would overflow inside the forward pass (a half-precision pass stores the patch embedding's
/// input in 16 bits) and the backends would not agree on what comes out: it is refused, naming where it is.
/// </summary>
internal static class PreprocessedCheck
{
    /// <summary>The largest magnitude a preprocessed value may have: far beyond any model's normalization.</summary>
    public const float MaxMagnitude = 1e4f;

    /// <exception cref="ArgumentException">A value is NaN, infinite or beyond ±<see cref="MaxMagnitude"/>.</exception>
    public static void Check(ReadOnlySpan<float> values, int imageLength, string paramName)
    {
        int i = 0;
        var bound = new Vector<float>(MaxMagnitude);
        // NaN fails every comparison, so "all |x| <= bound" is false for NaN, infinities and large values alike.
        for (; i <= values.Length - Vector<float>.Count; i += Vector<float>.Count)
            if (!Vector.LessThanOrEqualAll(Vector.Abs(new Vector<float>(values[i..])), bound))
                break;
        for (; i < values.Length; i++)
            if (!(Math.Abs(values[i]) <= MaxMagnitude))
                throw new ArgumentException(
                    $"preprocessed image {i / imageLength}, value {i % imageLength}, is {values[i]}: a preprocessed image holds normalized pixels, " +
                    $"finite and within ±{MaxMagnitude:0}", paramName);
    }
}
