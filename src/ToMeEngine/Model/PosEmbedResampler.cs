namespace ToMe.Model;

/// <summary>
/// timm's <c>resample_abs_pos_embed</c> at load time: a checkpoint trained at one image size run at another. The prefix
/// tokens' rows (class, distillation, registers; none with <c>no_embed_class</c>) are copied; the patch grid is
/// interpolated like <c>F.interpolate(mode="bicubic", align_corners=False, antialias=False)</c>.
/// </summary>
internal static class PosEmbedResampler
{
    /// <summary>
    /// The stored square grid side when <c>pos_embed</c>'s shape is a valid embedding for a grid other than the
    /// config's; null when it is the config's grid or not a position embedding of this model at all.
    /// </summary>
    public static int? StoredGrid(IReadOnlyList<int> shape, ModelConfig config)
    {
        int prefix = config.PosEmbedTokens - config.NumPatches;
        if (shape.Count != 3 || shape[0] != 1 || shape[2] != config.EmbedDim || shape[1] <= prefix)
            return null;
        long patches = shape[1] - prefix;
        int grid = (int)Math.Round(Math.Sqrt(patches));
        return (long)grid * grid == patches && grid != config.GridSize ? grid : null;
    }

    /// <summary>pos: [prefix + oldGrid², C] -> [prefix + G², C] for the config's grid G.</summary>
    public static float[] Resample(float[] pos, ModelConfig config, int oldGrid)
    {
        int c = config.EmbedDim, prefix = config.PosEmbedTokens - config.NumPatches, g = config.GridSize;
        var result = new float[(prefix + g * g) * c];
        pos.AsSpan(0, prefix * c).CopyTo(result);
        Bicubic(pos.AsSpan(prefix * c, oldGrid * oldGrid * c), oldGrid, oldGrid, g, g, c, result.AsSpan(prefix * c));
        return result;
    }

    /// <summary>
    /// torch's bicubic upsampling (a = −0.75, align_corners=False, no antialias) of a channels-last image:
    /// source: [inH, inW, C] -> destination: [outH, outW, C], torch's <c>area_pixel_compute_source_index</c> and
    /// <c>get_cubic_upsample_coefficients</c> with taps clamped at the border. Computed in double: torch's float32 kernel
    /// loses a few 1e-6 to cancellation in the negative lobes, so this equals torch in float64 to the output's rounding.
    /// </summary>
    public static void Bicubic(ReadOnlySpan<float> source, int inH, int inW, int outH, int outW, int channels, Span<float> destination)
    {
        var (ys, wy) = Taps(inH, outH);
        var (xs, wx) = Taps(inW, outW);
        var row = new double[channels];
        var acc = new double[channels];
        for (int oy = 0; oy < outH; oy++)
        {
            for (int ox = 0; ox < outW; ox++)
            {
                Array.Clear(acc);
                for (int i = 0; i < 4; i++)
                {
                    Array.Clear(row);
                    for (int j = 0; j < 4; j++)
                    {
                        var src = source.Slice((ys[oy * 4 + i] * inW + xs[ox * 4 + j]) * channels, channels);
                        double w = wx[ox * 4 + j];
                        for (int ch = 0; ch < channels; ch++)
                            row[ch] += w * src[ch];
                    }
                    double v = wy[oy * 4 + i];
                    for (int ch = 0; ch < channels; ch++)
                        acc[ch] += v * row[ch];
                }
                var dst = destination.Slice((oy * outW + ox) * channels, channels);
                for (int ch = 0; ch < channels; ch++)
                    dst[ch] = (float)acc[ch];
            }
        }
    }

    /// <summary>The 4 source indices (clamped) and weights of every output position along one axis.</summary>
    private static (int[] Index, double[] Weight) Taps(int inSize, int outSize)
    {
        const double a = -0.75;
        var index = new int[outSize * 4];
        var weight = new double[outSize * 4];
        double scale = (double)inSize / outSize;
        for (int o = 0; o < outSize; o++)
        {
            // Cubic interpolation does not clamp the source coordinate at 0 (unlike linear); only the taps are clamped.
            double real = scale * (o + 0.5) - 0.5;
            int start = (int)Math.Floor(real);
            double t = real - start;
            double x1 = t, x2 = 1 - t;
            weight[o * 4 + 0] = ((a * (x1 + 1) - 5 * a) * (x1 + 1) + 8 * a) * (x1 + 1) - 4 * a;
            weight[o * 4 + 1] = ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1;
            weight[o * 4 + 2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1;
            weight[o * 4 + 3] = ((a * (x2 + 1) - 5 * a) * (x2 + 1) + 8 * a) * (x2 + 1) - 4 * a;
            for (int k = 0; k < 4; k++)
                index[o * 4 + k] = Math.Clamp(start + k - 1, 0, inSize - 1);
        }
        return (index, weight);
    }
}
