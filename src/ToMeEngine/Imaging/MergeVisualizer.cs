namespace ToMe.Imaging;

/// <summary>
/// ToMe's picture of merged tokens: every group of patches filled with the mean colour of its pixels and outlined
/// in a colour of its own, drawn over the model's input crop.
/// </summary>
internal static class MergeVisualizer
{
    /// <param name="crop">The image as the model sees it (resized and centre-cropped, S×S).</param>
    /// <param name="groups">For one image, the final token holding each original token [T0] (prefix tokens first; −1: dropped).</param>
    /// <param name="prefixTokens">Class / distillation tokens before the patches.</param>
    /// <param name="patchSize">Pixels per patch side.</param>
    public static RgbImage Render(RgbImage crop, ReadOnlySpan<int> groups, int prefixTokens, int patchSize)
    {
        int grid = crop.Width / patchSize;
        if (crop.Width != crop.Height || grid * patchSize != crop.Width || groups.Length != prefixTokens + grid * grid)
            throw new ArgumentException($"a {crop.Width}x{crop.Height} crop with patch {patchSize} does not fit {groups.Length} tokens ({prefixTokens} prefix)");
        int size = crop.Width;
        // group of every pixel; the patch grid is row-major after the prefix tokens
        var pixelGroup = new int[size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                pixelGroup[y * size + x] = groups[prefixTokens + (y / patchSize) * grid + x / patchSize];

        var sums = new Dictionary<int, (long R, long G, long B, long N)>();
        for (int i = 0; i < pixelGroup.Length; i++)
        {
            var s = sums.GetValueOrDefault(pixelGroup[i]);
            sums[pixelGroup[i]] = (s.R + crop.Pixels[3 * i], s.G + crop.Pixels[3 * i + 1], s.B + crop.Pixels[3 * i + 2], s.N + 1);
        }
        var output = new RgbImage(size, size);
        var px = output.Pixels;
        for (int i = 0; i < pixelGroup.Length; i++)
        {
            int g = pixelGroup[i];
            int y = i / size, x = i % size;
            bool border = (x > 0 && pixelGroup[i - 1] != g) || (x < size - 1 && pixelGroup[i + 1] != g)
                       || (y > 0 && pixelGroup[i - size] != g) || (y < size - 1 && pixelGroup[i + size] != g);
            if (g < 0)
            {
                px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = 0; // dropped by kth: nothing holds it
            }
            else if (border)
            {
                var (r, gr, b) = GroupColour(g);
                (px[3 * i], px[3 * i + 1], px[3 * i + 2]) = (r, gr, b);
            }
            else
            {
                var s = sums[g];
                px[3 * i] = (byte)((s.R + s.N / 2) / s.N);
                px[3 * i + 1] = (byte)((s.G + s.N / 2) / s.N);
                px[3 * i + 2] = (byte)((s.B + s.N / 2) / s.N);
            }
        }
        return output;
    }

    /// <summary>A bright colour per group, fixed by the group index (golden-ratio hue steps).</summary>
    private static (byte, byte, byte) GroupColour(int group)
    {
        double hue = (group * 0.6180339887498949) % 1.0 * 6;
        int sector = (int)hue;
        byte f = (byte)(255 * (hue - sector)), q = (byte)(255 - f);
        return sector switch
        {
            0 => (255, f, 40),
            1 => (q, 255, 40),
            2 => (40, 255, f),
            3 => (40, q, 255),
            4 => (f, 40, 255),
            _ => (255, 40, q),
        };
    }
}
