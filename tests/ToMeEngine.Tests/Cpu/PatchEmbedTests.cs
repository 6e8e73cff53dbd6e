using ToMe.Backends;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The CPU patch embedding against its definition: each patch unfolded in the conv weight's (channel, y, x) order, one
/// Linear over the rows, then the prefix tokens and the position table. Bit for bit (the same GEMM on the same rows).
/// </summary>
public class PatchEmbedTests
{
    [Theory]
    [InlineData(1, 16, 16, 0)]
    [InlineData(1, 32, 16, 1)]
    [InlineData(3, 48, 16, 2)]
    [InlineData(2, 28, 14, 1)]
    [InlineData(5, 24, 8, 1)]
    public void MatchesUnfoldThenLinear(int batch, int imageSize, int patchSize, int prefixTokens)
    {
        const int c = 24;
        int grid = imageSize / patchSize, tokens = prefixTokens + grid * grid, k = 3 * patchSize * patchSize;
        var images = Reference.Random(batch * 3 * imageSize * imageSize, imageSize + batch);
        var weight = Reference.Random(c * k, 2, 0.1f);
        var bias = Reference.Random(c, 3);
        var prefix = Reference.Random(prefixTokens * c, 4);
        var pos = Reference.Random(tokens * c, 5);

        var backend = new CpuBackend(2);
        var patch = backend.PrepareLinear(weight, c, k, bias);
        var img = backend.AllocateFloat(images.Length);
        backend.Upload(images, img);
        var posBuffer = backend.AllocateFloat(pos.Length);
        backend.Upload(pos, posBuffer);
        DeviceBuffer? prefixBuffer = null;
        if (prefixTokens > 0)
        {
            prefixBuffer = backend.AllocateFloat(prefix.Length);
            backend.Upload(prefix, prefixBuffer);
        }
        var x = backend.AllocateFloat(batch * tokens * c);
        backend.PatchEmbed(img, prefixBuffer, posBuffer, patch, batch, imageSize, patchSize, prefixTokens, x);
        var got = new float[batch * tokens * c];
        backend.Download(x, got);

        var unfolded = new float[batch * tokens * k];
        for (int b = 0; b < batch; b++)
            for (int p = 0; p < grid * grid; p++)
                for (int ch = 0; ch < 3; ch++)
                    for (int y = 0; y < patchSize; y++)
                        for (int xx = 0; xx < patchSize; xx++)
                            unfolded[(b * tokens + prefixTokens + p) * k + (ch * patchSize + y) * patchSize + xx] =
                                images[((b * 3 + ch) * imageSize + p / grid * patchSize + y) * imageSize + p % grid * patchSize + xx];
        var expected = new float[batch * tokens * c];
        CpuGemm.Linear(unfolded, batch * tokens, PackedWeight.Pack(weight, c, k), bias, expected, GemmEpilogue.Bias, 1);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < tokens * c; i++)
            {
                int at = b * tokens * c + i;
                expected[at] = (i < prefixTokens * c ? prefix[i] : expected[at]) + pos[i];
            }
        Assert.Equal(expected, got);
    }
}
