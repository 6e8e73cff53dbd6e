using ToMe.Imaging;

namespace ToMe.Tests.Imaging;

/// <summary>What a caller's preprocessed image may hold: finite values within ±1e4, found wherever the first bad one is.</summary>
public sealed class PreprocessedCheckTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(37, 36)]   // in the scalar tail after the vectors
    [InlineData(150_528, 77_777)]
    [InlineData(301_056, 150_528)] // the second image's first value
    public void TheFirstBadValueIsNamedByImageAndPlace(int length, int at)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
            values[i] = (i % 7 - 3) * 3.3f;
        values[^1] = -PreprocessedCheck.MaxMagnitude; // the bound itself is allowed
        PreprocessedCheck.Check(values, 150_528, "images");
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 10_000.001f, -3e38f })
        {
            var copy = values.ToArray();
            copy[at] = bad;
            if (at + 1 < length)
                copy[at + 1] = float.NaN; // a later bad value is not the one named
            var e = Assert.Throws<ArgumentException>(() => PreprocessedCheck.Check(copy, 150_528, "images"));
            Assert.StartsWith($"preprocessed image {at / 150_528}, value {at % 150_528}, is {bad}:", e.Message);
            Assert.Equal("images", e.ParamName);
        }
    }
}
