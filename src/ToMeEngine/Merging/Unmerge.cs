namespace ToMe.Merging;

/// <summary>
/// Dense outputs from merged tokens (SPEC-merging §3 "Unmerge"): every original token takes the value of the token that
/// holds it at the end of the forward pass. Inputs are <see cref="Model.ForwardResult.Tokens"/> and
/// <see cref="Model.ForwardResult.Groups"/>; an original token with no holder (group −1, kth's dropped tail) gets zeros.
/// </summary>
public static class Unmerge
{
    /// <summary>tokens: [B, T_f, C], groups: [B, T0] → [B, T0, C].</summary>
    public static float[] Tokens(ReadOnlySpan<float> tokens, ReadOnlySpan<int> groups, int batch, int finalTokens, int channels)
    {
        int t0 = Check(tokens, groups, batch, finalTokens, channels);
        var result = new float[batch * t0 * channels];
        for (int b = 0; b < batch; b++)
            for (int g = 0; g < t0; g++)
                Copy(tokens, groups, b, g, t0, finalTokens, channels, result.AsSpan((b * t0 + g) * channels, channels));
        return result;
    }

    /// <summary>
    /// The patch grid: tokens: [B, T_f, C], groups: [B, p + H_p·W_p] → [B, H_p, W_p, C], the prefix tokens (class,
    /// distillation) left out and patches in the row-major order of the patch embedding.
    /// </summary>
    public static float[] PatchGrid(ReadOnlySpan<float> tokens, ReadOnlySpan<int> groups, int batch, int finalTokens, int channels,
        int prefixTokens, int gridHeight, int gridWidth)
    {
        int t0 = Check(tokens, groups, batch, finalTokens, channels);
        int patches = gridHeight * gridWidth;
        if (prefixTokens < 0 || t0 != prefixTokens + patches)
            throw new ArgumentException($"groups hold {t0} original tokens per image, expected {prefixTokens} prefix + {gridHeight}×{gridWidth} patches");
        var result = new float[batch * patches * channels];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < patches; i++)
                Copy(tokens, groups, b, prefixTokens + i, t0, finalTokens, channels, result.AsSpan((b * patches + i) * channels, channels));
        return result;
    }

    private static void Copy(ReadOnlySpan<float> tokens, ReadOnlySpan<int> groups, int b, int g, int t0, int finalTokens, int channels, Span<float> dst)
    {
        int holder = groups[b * t0 + g];
        if (holder >= finalTokens)
            throw new ArgumentException($"groups[{b}, {g}] = {holder} is not one of the {finalTokens} final tokens");
        if (holder >= 0)
            tokens.Slice((b * finalTokens + holder) * channels, channels).CopyTo(dst);
    }

    private static int Check(ReadOnlySpan<float> tokens, ReadOnlySpan<int> groups, int batch, int finalTokens, int channels)
    {
        if (batch <= 0 || finalTokens <= 0 || channels <= 0)
            throw new ArgumentException($"batch {batch}, finalTokens {finalTokens} and channels {channels} must be positive");
        if (tokens.Length != batch * finalTokens * channels)
            throw new ArgumentException($"tokens have {tokens.Length} values, expected [{batch}, {finalTokens}, {channels}]");
        if (groups.Length % batch != 0)
            throw new ArgumentException($"groups have {groups.Length} values, not a multiple of the batch {batch}");
        return groups.Length / batch;
    }
}
