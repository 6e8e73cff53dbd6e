using ToMe.Merging;

namespace ToMe.Model;

/// <summary>Per-call switches of a forward pass.</summary>
internal sealed record ForwardOptions
{
    public MergeSchedule Schedule { get; init; } = MergeSchedule.None;

    /// <summary>The merging algorithm; ToMe, random and CIS take their r from <see cref="Schedule"/>.</summary>
    public MergeStrategy Strategy { get; init; } = MergeStrategy.ToMe;

    /// <summary>
    /// Proportional attention: add log(size) to the attention logits (ToMe's default for off-the-shelf models).
    /// ToMato always uses it: its padding slots (size 0) must get no attention.
    /// </summary>
    public bool ProportionalAttention { get; init; } = true;

    /// <summary>Also return the final tokens (<see cref="ForwardResult.Tokens"/>), e.g. for <see cref="Unmerge"/>.</summary>
    public bool ReturnTokens { get; init; }

    /// <summary>
    /// Return <see cref="ForwardResult.Size"/> and <see cref="ForwardResult.Groups"/> (the default). Off, both are empty and
    /// only the logits (and the tokens when asked for) leave the device.
    /// </summary>
    public bool ReturnMerges { get; init; } = true;
}
