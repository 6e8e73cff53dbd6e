namespace ToMe.Tests.Support;

/// <summary>The closeness check every kernel test relies on: it must pass what agrees and fail what does not.</summary>
public class CloseTests
{
    [Fact]
    public void EqualInfinitiesAndNaNsAgree()
    {
        // Matching −∞ is what a protected token's best score is on every backend; ∞ − ∞ is NaN, so a plain
        // |a − r| ≤ tol check once failed these.
        Close.AssertAll([float.NegativeInfinity, float.PositiveInfinity, float.NaN, 1f], [float.NegativeInfinity, float.PositiveInfinity, float.NaN, 1f],
            0, 0, "equal non-finite values");
    }

    [Theory]
    [InlineData(float.NegativeInfinity, float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity, -3e38f)]
    [InlineData(float.NaN, 0f)]
    [InlineData(0f, float.NaN)]
    [InlineData(1f, 1.001f)]
    public void DisagreementFails(float expected, float actual)
    {
        Assert.ThrowsAny<Exception>(() => Close.AssertAll([expected], [actual], 1e-4, 0, "disagreeing values"));
    }
}
