namespace ToMe.Serving;

/// <summary>
/// How a <see cref="BatchingClassifier"/> gathers requests into batches, after Triton's dynamic batcher: a batch runs when
/// it holds <see cref="MaxBatchSize"/> requests, or when its oldest request has waited <see cref="MaxQueueDelay"/>.
/// Mutable for the options pattern; read once when the classifier is built.
/// </summary>
public sealed class BatchingOptions
{
    /// <summary>Most images in one forward pass; a classifier lowers it to its engine's <see cref="EngineOptions.MaxBatchSize"/>.</summary>
    public int MaxBatchSize { get; set; } = 32;

    /// <summary>
    /// How long the oldest queued request may wait for others to join its batch. Zero batches only what is already queued
    /// (while the previous batch ran); a few milliseconds trade that much latency for larger batches at low load.
    /// </summary>
    public TimeSpan MaxQueueDelay { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>
    /// Most requests admitted whose forward pass has not started (being decoded or waiting); one more is refused with
    /// <see cref="EngineOverloadedException"/>. Each waiting request holds its preprocessed image (3·S·S floats,
    /// 600 KB at 224 px), so this bounds memory.
    /// </summary>
    public int MaxQueueLength { get; set; } = 256;

    /// <summary>
    /// Requests decoded and preprocessed at once, on the thread pool; 0 (the default) means one per processor. Requests
    /// beyond it wait for a decoder in arrival order (they count against <see cref="MaxQueueLength"/>).
    /// </summary>
    public int DecodeParallelism { get; set; }

    /// <summary>
    /// On a GPU, take the next batch while this one runs, so that its images upload during this forward pass: when a
    /// full batch (<see cref="MaxBatchSize"/>) is already waiting as a forward starts, those requests become the next batch
    /// then. Batches are what they would be without it; a request taken ahead stays cancellable until its own forward
    /// starts (the batch runs without it). On by default; the CPU backend has nothing to upload and ignores it.
    /// </summary>
    public bool UploadAhead { get; set; } = true;

    internal void Validate()
    {
        if (DecodeParallelism < 0)
            throw new ArgumentOutOfRangeException(nameof(DecodeParallelism), DecodeParallelism, "must be 0 (one per processor) or positive");
        if (MaxBatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "must be at least 1");
        if (MaxQueueDelay < TimeSpan.Zero || MaxQueueDelay > TimeSpan.FromSeconds(10))
            throw new ArgumentOutOfRangeException(nameof(MaxQueueDelay), MaxQueueDelay, "must be between 0 and 10 s");
        if (MaxQueueLength < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxQueueLength), MaxQueueLength, "must be at least 1");
    }

    internal BatchingOptions Clone() => (BatchingOptions)MemberwiseClone();
}
