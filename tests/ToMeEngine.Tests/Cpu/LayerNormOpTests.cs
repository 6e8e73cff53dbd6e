using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The CPU backend's LayerNorm op against one row at a time through <see cref="RowOps.LayerNorm"/>, bit for bit: over a
/// whole batch (rows split between threads in groups of the kernel's rows) and as one image's op while the team runs
/// other images (all rows on the calling thread), in place or not.
/// </summary>
public class LayerNormOpTests
{
    [Theory]
    [InlineData(1, 192)]
    [InlineData(2, 192)]
    [InlineData(197, 192)]
    [InlineData(577, 384)]
    [InlineData(1025, 192)]
    [InlineData(3 * 197, 768)]
    [InlineData(16 * 197, 192)]
    [InlineData(130, 37)]
    [InlineData(259, 200)]
    public void MatchesOneRowAtATimeBitForBit(int rows, int channels)
    {
        var x = Reference.Random(rows * channels, rows + channels, 2f, 3f);
        var weight = Reference.Random(channels, 2, 1f, 1f);
        var bias = Reference.Random(channels, 3);
        const float eps = 1e-6f;
        var expected = new float[rows * channels];
        for (int r = 0; r < rows; r++)
            RowOps.LayerNorm(x.AsSpan(r * channels, channels), expected.AsSpan(r * channels, channels), 1, channels, weight, bias, eps);

        foreach (int threads in new[] { 1, 2, 3 })
        {
            var backend = new CpuBackend(threads);
            var xb = backend.AllocateFloat(x.Length);
            var wb = backend.AllocateFloat(channels);
            var bb = backend.AllocateFloat(channels);
            var yb = backend.AllocateFloat(x.Length);
            backend.Upload(weight, wb);
            backend.Upload(bias, bb);

            backend.Upload(x, xb);
            backend.LayerNorm(xb, wb, bb, rows, channels, eps, yb);
            Assert.Equal(expected, Read(backend, yb, x.Length));

            backend.LayerNorm(xb, wb, bb, rows, channels, eps, xb);
            Assert.Equal(expected, Read(backend, xb, x.Length));

            // As one image's op among several running at once: the team is busy and the op runs on its own thread.
            backend.Upload(x, xb);
            var y2 = backend.AllocateFloat(x.Length);
            backend.ForEachImage(2, i =>
            {
                if (i == 0)
                    backend.LayerNorm(xb, wb, bb, rows, channels, eps, y2);
            });
            Assert.Equal(expected, Read(backend, y2, x.Length));
        }
    }

    private static float[] Read(CpuBackend backend, ToMe.Backends.DeviceBuffer buffer, int length)
    {
        var values = new float[length];
        backend.Download(buffer, values);
        return values;
    }
}
