namespace ToMe.Serving;

/// <summary>
/// Classifies images asynchronously; implementations are thread-safe (call from any number of threads at once).
/// The seam services depend on, so that tests can substitute a fake.
/// </summary>
public interface IImageClassifier
{
    /// <summary>A one-line description for health checks and logs, e.g. the model and backend.</summary>
    string Description { get; }

    /// <summary>The model served: input size, classes and their labels (every engine of a pool serves the same one).</summary>
    Model.ModelConfig Model { get; }

    /// <summary>
    /// Why the classifier cannot classify now (health checks answer 503 with it), or null while it can: e.g. its engine
    /// lost its GPU context and a fresh one could not be built yet.
    /// </summary>
    Exception? Fault => null;

    /// <summary>The <paramref name="topK"/> most probable classes of <paramref name="image"/>, most probable first.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="image"/> is null (thrown at the call).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1 (thrown at the call).</exception>
    /// <exception cref="FileNotFoundException">A path names no file (or a directory).</exception>
    /// <exception cref="Imaging.InvalidImageException">The image cannot be decoded (only this request fails).</exception>
    /// <exception cref="ArithmeticException">The image's logits are not finite (values far outside a preprocessed image's range).</exception>
    /// <exception cref="ArgumentException">A preprocessed image (<see cref="ImageInput.FromTensor"/>) is not [3, S, S] for this model.</exception>
    /// <exception cref="EngineOverloadedException">The request queue is full; retry later or elsewhere.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the request ran.</exception>
    /// <exception cref="ObjectDisposedException">The classifier was disposed before the request ran.</exception>
    Task<IReadOnlyList<Prediction>> ClassifyAsync(ImageInput image, int topK = 5, CancellationToken cancellationToken = default);

    /// <summary>
    /// Classifies the images of one request: one task per image, in order, each failing alone as
    /// <see cref="ClassifyAsync"/> does. A queueing classifier admits them together: all, or none
    /// (<see cref="EngineOverloadedException"/>, thrown before any work), so that a request is never part-way run and then
    /// refused. This default classifies each image with <see cref="ClassifyAsync"/>.
    /// </summary>
    /// <exception cref="ArgumentException">More images than the classifier can ever queue at once.</exception>
    /// <exception cref="EngineOverloadedException">The queue has no room for all of them now.</exception>
    IReadOnlyList<Task<IReadOnlyList<Prediction>>> ClassifyGroup(IReadOnlyList<ImageInput> images, int topK = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        return images.Select(image => ClassifyAsync(image, topK, cancellationToken)).ToArray();
    }
}
