namespace ToMe.Tests;

public class SmokeTests
{
    [Fact]
    public void LibraryLoads() => Assert.Equal("ToMeEngine", typeof(ToMe.Weights.DType).Assembly.GetName().Name);
}
