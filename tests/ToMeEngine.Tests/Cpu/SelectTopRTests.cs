using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>The CPU backend's ranking of set-A tokens against its definition: a sort by float.CompareTo, descending, lower index first on ties.</summary>
public class SelectTopRTests
{
    [Theory]
    [InlineData(1, 1, 0, false)]
    [InlineData(1, 1, 1, true)]
    [InlineData(3, 2, 1, true)]
    [InlineData(2, 99, 13, true)]
    [InlineData(2, 99, 13, false)]
    [InlineData(1, 289, 16, true)]
    [InlineData(1, 513, 100, false)]
    [InlineData(3, 1025, 8, true)]
    [InlineData(5, 7, 7, true)]
    public void MatchesComparisonSort(int batch, int setA, int r, bool keepUnmergedInOrder)
    {
        var random = new Random(setA + r);
        float[] specials = [float.NaN, -float.NaN, float.NegativeInfinity, float.PositiveInfinity, 0f, -0f, float.Epsilon, -float.Epsilon, 1f, -1f];
        // Coarse values (many ties) mixed with the special ones.
        var values = Enumerable.Range(0, batch * setA)
            .Select(i => i % 6 == 0 ? specials[random.Next(specials.Length)] : MathF.Round((float)random.NextDouble() * 8 - 4) / 4)
            .ToArray();
        var backend = new CpuBackend(2);
        var best = backend.AllocateFloat(values.Length);
        backend.Upload(values, best);
        var order = backend.AllocateInt(values.Length);
        backend.SelectTopR(best, batch, setA, r, keepUnmergedInOrder, order);
        var got = new int[values.Length];
        backend.Download(order, got);

        for (int b = 0; b < batch; b++)
        {
            var expected = Enumerable.Range(0, setA).ToArray();
            int offset = b * setA;
            Array.Sort(expected, (x, y) => values[offset + y].CompareTo(values[offset + x]) is var cmp && cmp != 0 ? cmp : x.CompareTo(y));
            if (keepUnmergedInOrder)
                Array.Sort(expected, r, setA - r);
            Assert.Equal(expected, got.AsSpan(offset, setA).ToArray());
        }
    }
}
