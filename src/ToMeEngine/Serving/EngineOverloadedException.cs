namespace ToMe.Serving;

/// <summary>
/// Thrown by <see cref="IImageClassifier.ClassifyAsync"/> when the request queue already holds
/// <see cref="BatchingOptions.MaxQueueLength"/> requests: back-pressure instead of unbounded memory. Nothing was queued;
/// the caller may retry later or elsewhere (an HTTP service answers 503).
/// </summary>
public sealed class EngineOverloadedException : Exception
{
    /// <summary>A refused request; <paramref name="message"/> says why and what to do (initialize <see cref="QueueLimit"/> as well).</summary>
    public EngineOverloadedException(string message) : base(message) { }

    /// <summary>A refused request, caused by <paramref name="inner"/>.</summary>
    public EngineOverloadedException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The queue limit that was reached.</summary>
    public int QueueLimit { get; init; }
}
