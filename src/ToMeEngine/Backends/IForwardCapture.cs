using ToMe.Merging;
using ToMe.Model;

namespace ToMe.Backends;

/// <summary>One forward pass over a workspace: every op, upload and download <see cref="ForwardPass"/> issues for it.</summary>
internal delegate ForwardResult ForwardGroup(ReadOnlySpan<float> images);

/// <summary>
/// What decides the ops of a forward pass: the same key issues the same ops on the same buffers (only the uploaded
/// values differ), so a backend may record them once and replay them.
/// </summary>
/// <remarks>
/// <c>Workspace</c> is the buffers (by identity); <c>Plan</c> the tokens merged per layer, as the schedule and strategy give
/// them; the rest are the forward's options and precision.
/// </remarks>
internal sealed record ForwardKey(object Workspace, int Batch, MergeStrategy Strategy, string Plan, bool ProportionalAttention,
    bool ReturnTokens, bool ReturnMerges, Precision Precision);

/// <summary>
/// A backend that runs whole forward passes itself (CUDA graphs): <see cref="ForwardPass"/> hands it each untraced forward
/// as a <see cref="ForwardGroup"/>, which it may call more than once (to record the ops, then to replay them).
/// </summary>
internal interface IForwardCapture
{
    /// <param name="key">What decides the ops <paramref name="run"/> issues.</param>
    /// <param name="images">The batch.</param>
    /// <param name="run">The forward pass.</param>
    /// <param name="next">The next batch's images, when the caller knows them (may be uploaded while this batch runs).</param>
    ForwardResult Run(ForwardKey key, ReadOnlySpan<float> images, ForwardGroup run, ReadOnlySpan<float> next);

    /// <summary>
    /// The batch given as <c>next</c> to the last <see cref="Run"/> will not run (its caller has gone): forget its upload, so
    /// that a forward of other images at the same address uploads them.
    /// </summary>
    void ForgetNext();
}
