namespace ToMe.Model;

/// <summary>Observes a forward pass (tests and debugging); every callback copies data to the host.</summary>
internal sealed class ForwardTrace
{
    /// <summary>Hidden states after the embedding, [B, T0, C].</summary>
    public Action<float[]>? OnEmbed { get; init; }

    /// <summary>Hidden states after block l, [B, T, C].</summary>
    public Action<int, float[]>? OnBlock { get; init; }

    /// <summary>Layer l's decision: sources [B, r] (set-A indices, ascending) and their destinations [B, r] (set-B indices).</summary>
    public Action<int, int[], int[]>? OnMerge { get; init; }

    /// <summary>Layer l's decision in kth, random and ToMato merges: the new index of every token, [B, T] (−1: dropped).</summary>
    public Action<int, int[]>? OnAssign { get; init; }
}
