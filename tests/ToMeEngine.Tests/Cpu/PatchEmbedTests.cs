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
    // The forward's first step reads the caller's images in place: bit for bit the upload then PatchEmbed, whole batches
    // (the unfolding split between threads) and one image inside the image-parallel loop, and the staging buffer untouched.
    [Theory]
    [InlineData(1, 224, 16, 1, 192)]
    [InlineData(2, 224, 16, 1, 192)]
    [InlineData(3, 224, 16, 2, 384)]
    [InlineData(5, 48, 16, 0, 24)]
    [InlineData(1, 28, 14, 5, 37)]
    public void EmbedImagesMatchesUploadThenPatchEmbed(int batch, int imageSize, int patchSize, int prefixTokens, int c)
    {
        int grid = imageSize / patchSize, tokens = prefixTokens + grid * grid, k = 3 * patchSize * patchSize;
        var images = Reference.Random(batch * 3 * imageSize * imageSize, imageSize + batch + 9);
        var backend = new CpuBackend(2);
        var patch = backend.PrepareLinear(Reference.Random(c * k, 12, 0.1f), c, k, Reference.Random(c, 13));
        var pos = Upload(backend, Reference.Random(tokens * c, 14));
        var prefix = prefixTokens > 0 ? Upload(backend, Reference.Random(prefixTokens * c, 15)) : null;

        var staged = Upload(backend, images);
        var expected = backend.AllocateFloat(batch * tokens * c);
        backend.PatchEmbed(staged, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, expected);

        var staging = backend.AllocateFloat(images.Length);
        var x = backend.AllocateFloat(batch * tokens * c);
        backend.EmbedImages(images, staging, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
        Assert.Equal(Download(backend, expected), Download(backend, x));
        Assert.All(Download(backend, staging), v => Assert.Equal(0f, v));

        // Each image alone, as the image-parallel forward runs them (the team busy: every loop on the image's thread).
        int perImage = 3 * imageSize * imageSize;
        var one = Enumerable.Range(0, batch).Select(_ => backend.AllocateFloat(tokens * c)).ToArray();
        var ones = Enumerable.Range(0, batch).Select(_ => backend.AllocateFloat(perImage)).ToArray();
        backend.ForEachImage(batch, b => backend.EmbedImages(images.AsSpan(b * perImage, perImage), ones[b], prefix, pos, patch, 1,
            imageSize, patchSize, prefixTokens, one[b]));
        Assert.Equal(Download(backend, expected), one.SelectMany(o => Download(backend, o)).ToArray());
    }

    private static DeviceBuffer Upload(CpuBackend backend, float[] values)
    {
        var buffer = backend.AllocateFloat(values.Length);
        backend.Upload(values, buffer);
        return buffer;
    }

    private static float[] Download(CpuBackend backend, DeviceBuffer buffer)
    {
        var values = new float[buffer.Length];
        backend.Download(buffer, values);
        return values;
    }
}
