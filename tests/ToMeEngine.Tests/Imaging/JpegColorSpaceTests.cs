using ToMe.Imaging;

namespace ToMe.Tests.Imaging;

/// <summary>
/// Four-component and untransformed JPEGs. PIL opens any 4-component JPEG as "CMYK" with raw mode
/// "CMYK;I" (Adobe's inverted convention), libjpeg having turned YCCK into CMYK first when the Adobe
/// marker says transform 2; <c>convert("RGB")</c> then applies Pillow's cmyk2rgb.
/// </summary>
public class JpegColorSpaceTests
{
    private static readonly byte[] C = [0, 255, 30, 200], M = [255, 0, 60, 100], Y = [128, 17, 90, 0], K = [255, 255, 0, 160];

    // Pillow: unpack "CMYK;I" inverts, then cmyk2rgb: nk = 255 - k; out = nk - MULDIV255(v, nk).
    private static byte PilCmykChannel(int storedValue, int storedK)
    {
        int v = 255 - storedValue, nk = 255 - (255 - storedK);
        var tmp = v * nk + 128;
        return (byte)Math.Clamp(nk - (((tmp >> 8) + tmp) >> 8), 0, 255);
    }

    private static void AssertBlocks(RgbImage image, Func<int, (byte, byte, byte)> expected)
    {
        Assert.Equal((32, 8), (image.Width, image.Height));
        for (var y = 0; y < 8; y++)
            for (var x = 0; x < 32; x++)
            {
                var p = (y * 32 + x) * 3;
                Assert.Equal(expected(x / 8), (image.Pixels[p], image.Pixels[p + 1], image.Pixels[p + 2]));
            }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(null)]
    public void AdobeCmyk(int? transform)
    {
        var image = ImageDecoder.Decode(FlatJpegWriter.Encode([C, M, Y, K], transform));
        AssertBlocks(image, b => (PilCmykChannel(C[b], K[b]), PilCmykChannel(M[b], K[b]), PilCmykChannel(Y[b], K[b])));
    }

    [Fact]
    public void AdobeYcck()
    {
        // Neutral chroma: libjpeg's YCC->RGB gives R = G = B = Y, and YCCK->CMYK stores 255 - that.
        byte[] luma = [0, 255, 77, 200], neutral = [128, 128, 128, 128];
        var image = ImageDecoder.Decode(FlatJpegWriter.Encode([luma, neutral, neutral, K], 2));
        AssertBlocks(image, b =>
        {
            var v = PilCmykChannel(255 - luma[b], K[b]);
            return (v, v, v);
        });
    }

    [Fact]
    public void AdobeTransformZeroThreeComponentsIsRgb()
    {
        var image = ImageDecoder.Decode(FlatJpegWriter.Encode([C, M, Y], 0));
        AssertBlocks(image, b => (C[b], M[b], Y[b]));
    }

    [Fact]
    public void ComponentIdsRgbWithoutMarkersIsRgb()
    {
        var image = ImageDecoder.Decode(FlatJpegWriter.Encode([C, M, Y], null, "RGB"u8.ToArray()));
        AssertBlocks(image, b => (C[b], M[b], Y[b]));
    }

    [Fact]
    public void DefaultThreeComponentsAreYCbCr()
    {
        // Flat grey: Cb = Cr = 128 leaves R = G = B = Y through the fixed-point tables.
        byte[] luma = [0, 255, 77, 200], neutral = [128, 128, 128, 128];
        var image = ImageDecoder.Decode(FlatJpegWriter.Encode([luma, neutral, neutral], null));
        AssertBlocks(image, b => (luma[b], luma[b], luma[b]));
    }
}
