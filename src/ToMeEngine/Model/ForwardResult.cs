namespace ToMe.Model;

/// <summary>The outputs of one forward pass over a batch (<see cref="ToMeEngine.Forward(ReadOnlySpan{float}, int, bool)"/>); arrays are row-major.</summary>
/// <param name="Batch">Images in the batch (B).</param>
/// <param name="Logits">[B, classes]: the head's output, before softmax (<see cref="ToMeEngine.TopK"/> turns a row into predictions).</param>
/// <param name="TokensPerLayer">Tokens entering each block, prefix tokens included ([depth]).</param>
/// <param name="FinalTokens">Tokens after the last block (per image; ToMato pads every image to the batch's largest count).</param>
/// <param name="Size">[B, FinalTokens]: how many original tokens each final token holds (0: a ToMato padding slot).</param>
/// <param name="Groups">[B, T0]: the final token holding each original token, prefix tokens first (−1: dropped by kth's tail).</param>
/// <param name="Tokens">[B, FinalTokens, C]: the last block's output after the final norm, when asked for; else null.</param>
public sealed record ForwardResult(
    int Batch,
    float[] Logits,
    int[] TokensPerLayer,
    int FinalTokens,
    float[] Size,
    int[] Groups,
    float[]? Tokens = null);
