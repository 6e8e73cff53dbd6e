namespace ToMe.Model;

/// <summary>The outputs of one forward pass over a batch.</summary>
public sealed record ForwardResult(
    int Batch,
    float[] Logits,          // [B, classes]
    int[] TokensPerLayer,    // tokens entering each block
    int FinalTokens,
    float[] Size,            // [B, FinalTokens] original tokens held by each final token (0: a ToMato padding slot)
    int[] Groups,            // [B, T0] the final token holding each original token (−1: dropped by kth's tail)
    float[]? Tokens = null); // [B, FinalTokens, C] the last block's output after the final norm, when asked for
