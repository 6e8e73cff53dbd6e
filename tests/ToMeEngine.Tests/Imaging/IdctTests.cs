using ToMe.Imaging.Jpeg;

namespace ToMe.Tests.Imaging;

public class IdctTests
{
    /// <summary>
    /// The AVX2 transform must equal the scalar port of jidctint.c on any input, including corrupt
    /// coefficients large enough to hit libjpeg's wrap-around range limit.
    /// </summary>
    [Fact]
    public void VectorPathEqualsScalarPath()
    {
        if (!IdctAvx2.IsSupported)
            Assert.Skip("AVX2 not available on this CPU; only the scalar path runs here");
        var rng = new Random(5);
        var coefs = new short[64];
        var quant = new int[64];
        var a = new byte[8 * 11];
        var b = new byte[8 * 11];
        for (var iteration = 0; iteration < 20000; iteration++)
        {
            var kind = iteration % 4;
            for (var i = 0; i < 64; i++)
            {
                quant[i] = kind == 3 ? rng.Next(1, 256) : rng.Next(1, 100);
                var sparse = kind == 0 && i > 0 && rng.Next(4) != 0; // many zero ACs: the scalar shortcuts
                coefs[i] = sparse ? (short)0 : kind switch
                {
                    0 or 1 => (short)rng.Next(-60, 60),
                    2 => (short)rng.Next(-1024, 1024),
                    _ => (short)rng.Next(short.MinValue / 64, short.MaxValue / 64),
                };
            }
            Idct.Islow(coefs, quant, a, 3, 11, allowSimd: true);
            Idct.Islow(coefs, quant, b, 3, 11, allowSimd: false);
            Assert.True(a.AsSpan().SequenceEqual(b), $"iteration {iteration}");
        }
    }
}
