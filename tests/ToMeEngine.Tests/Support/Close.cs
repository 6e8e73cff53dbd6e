namespace ToMe.Tests.Support;

/// <summary>
/// Element-wise closeness, |a − r| ≤ atol + rtol·|r|, reporting the first mismatches (llm.c style). Non-finite values must
/// agree exactly: a NaN where the reference has one, the same infinity where it has one.
/// </summary>
internal static class Close
{
    public static void AssertAll(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        var failures = new List<string>();
        int bad = 0;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(actual[i] - expected[i]);
            bool ok = double.IsFinite(expected[i])
                ? diff <= atol + rtol * Math.Abs(expected[i])
                : expected[i].Equals((double)actual[i]);   // Equals: NaN equals NaN, ∞ equals ∞
            if (double.IsFinite(diff))
                worst = Math.Max(worst, diff);
            if (!ok && bad++ < 5)
                failures.Add($"[{i}] {actual[i]:R} vs {expected[i]:R} (diff {diff:E2})");
        }
        Assert.True(bad == 0, $"{what}: {bad} of {expected.Length} values outside atol {atol:E1} + rtol {rtol:E1}; max diff {worst:E2}; first: {string.Join(", ", failures)}");
    }

    public static void AssertAll(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++)
            e[i] = expected[i];
        AssertAll(e, actual, atol, rtol, what);
    }
}
