namespace ToMe.Tests.Support;

/// <summary>Element-wise closeness, |a − r| ≤ atol + rtol·|r|, reporting the first mismatches (llm.c style).</summary>
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
            bool ok = diff <= atol + rtol * Math.Abs(expected[i]) && !(double.IsNaN(actual[i]) ^ double.IsNaN(expected[i]));
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
