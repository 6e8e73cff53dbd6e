using ToMe.Merging;

namespace ToMe.Tests.Merging;

public class MergeScheduleTests
{
    [Theory]
    [InlineData("13", 12, new[] { 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13 })]
    [InlineData("8,-0.5", 4, new[] { 12, 9, 6, 4 })]          // ToMe's parse_r: int() truncation of a float ramp
    [InlineData("(12, 0.5)", 4, new[] { 6, 10, 14, 18 })]
    [InlineData("16,1", 3, new[] { 0, 16, 32 })]
    [InlineData("[30,0,20]", 5, new[] { 30, 0, 20, 0, 0 })]  // lists are padded with zeros
    [InlineData("[]", 2, new[] { 0, 0 })]
    [InlineData("5,0.3", 1, new[] { 3 })]                     // one layer: no division by zero
    public void ParsesLikeToMe(string text, int layers, int[] expected) =>
        Assert.Equal(expected, MergeSchedule.Parse(text).ForLayers(layers));

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("[1,x]")]
    [InlineData("1,2,3")]
    [InlineData("8,-2")]
    [InlineData("[1,2")]
    public void RejectsBadSpecsWithTheSpecInTheMessage(string text)
    {
        var error = Assert.Throws<FormatException>(() => MergeSchedule.Parse(text));
        Assert.Contains($"'{text}'", error.Message);
    }

    [Fact]
    public void AListLongerThanTheModelIsDeepIsRefused()
    {
        // ToMe would never read the tail: a list written for a deeper model.
        var error = Assert.Throws<ArgumentException>(() => MergeSchedule.Parse("[1,2,3,4,5]").ForLayers(4));
        Assert.Equal("merge schedule [1,2,3,4,5]: 5 per-layer entries, but the model has 4 blocks (give at most 4)", error.Message);
        Assert.Throws<ArgumentException>(() => MergeSchedule.Parse("[1,2,3,4,5]").Plan(4, 197, 1));
        Assert.Equal(new[] { 1, 2, 3, 4 }, MergeSchedule.Parse("[1,2,3,4]").ForLayers(4));
    }

    [Fact]
    public void RunTimeClampHalvesTheUnprotectedTokens()
    {
        // r = 100 on 197 tokens with a class token: 197 -> 99 -> 50 -> 26 -> 14 -> ...
        var (tokens, rs, final) = MergeSchedule.Constant(100).Plan(6, 197, 1);
        Assert.Equal(new[] { 197, 99, 50, 26, 14, 8 }, tokens);
        Assert.Equal(new[] { 98, 49, 24, 12, 6, 3 }, rs);
        Assert.Equal(5, final);
    }

    [Fact]
    public void RoundTripsThroughText()
    {
        foreach (var text in new[] { "13", "(16,-0.5)", "[8,8,4,0]" })
            Assert.Equal(text, MergeSchedule.Parse(text).ToString());
    }
}
