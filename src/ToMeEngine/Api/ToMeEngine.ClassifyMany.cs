using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ToMe.Imaging;

namespace ToMe;

/// <summary>
/// One result of <see cref="ToMeEngine.ClassifyManyAsync(IEnumerable{string}, int, int, CancellationToken)"/>: the input's
/// position and the input itself, and either its predictions or why it could not be classified.
/// </summary>
/// <param name="Index">The input's position in the sequence, from 0.</param>
/// <param name="Input">The input as given (a path, for the path overload).</param>
/// <param name="Predictions">The top classes, most probable first; null when <see cref="Error"/> is set.</param>
/// <param name="Error">What reading, decoding or preprocessing this input threw (e.g. <see cref="FileNotFoundException"/>,
/// <see cref="InvalidImageException"/>); null on success.</param>
public sealed record ImageClassification<TInput>(int Index, TInput Input, IReadOnlyList<Prediction>? Predictions, Exception? Error)
{
    [MemberNotNullWhen(true, nameof(Predictions))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded => Error is null;
}

// ClassifyManyAsync: a bounded pipeline of parallel decoding feeding full batches, results streamed in input order.
public sealed partial class ToMeEngine
{
    /// <summary>
    /// Classifies a sequence of image files as a stream of results in input order, each carrying its index and path.
    /// Up to <paramref name="maxDegreeOfParallelism"/> files are read and decoded at once on the thread pool, ahead of the
    /// forward passes, which take up to <see cref="EngineOptions.MaxBatchSize"/> images each; at most
    /// <c>MaxBatchSize + maxDegreeOfParallelism</c> decoded images are held, however long the sequence.
    /// A file that cannot be read or decoded yields a result with <see cref="ImageClassification{TInput}.Error"/> set and
    /// the stream goes on; a failing forward pass, cancellation or disposal ends it with that exception.
    /// </summary>
    /// <param name="paths">The files; enumerated lazily, as the pipeline has room.</param>
    /// <param name="topK">Classes per result.</param>
    /// <param name="maxDegreeOfParallelism">Files decoded at once; 0 means one per processor.</param>
    /// <param name="cancellationToken">Stops decoding and ends the stream with <see cref="OperationCanceledException"/>
    /// before the next forward pass (a running pass completes).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1 or <paramref name="maxDegreeOfParallelism"/> is negative (thrown at the call).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (from the enumeration).</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed (from the enumeration).</exception>
    public IAsyncEnumerable<ImageClassification<string>> ClassifyManyAsync(IEnumerable<string> paths, int topK = 5, int maxDegreeOfParallelism = 0,
                                                                           CancellationToken cancellationToken = default) =>
        StartPipeline(Asynchronously(paths ?? throw new ArgumentNullException(nameof(paths))),
            PreprocessFileAsync,
            topK, maxDegreeOfParallelism, cancellationToken);

    /// <summary>
    /// <see cref="ClassifyManyAsync(IEnumerable{string}, int, int, CancellationToken)"/> for any input: <paramref name="decode"/>
    /// turns each into pixels (on the thread pool, up to <paramref name="maxDegreeOfParallelism"/> at once); what it throws
    /// becomes that input's <see cref="ImageClassification{TInput}.Error"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1 or <paramref name="maxDegreeOfParallelism"/> is negative (thrown at the call).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (from the enumeration).</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed (from the enumeration).</exception>
    public IAsyncEnumerable<ImageClassification<T>> ClassifyManyAsync<T>(IEnumerable<T> inputs, Func<T, CancellationToken, Task<RgbImage>> decode,
                                                                         int topK = 5, int maxDegreeOfParallelism = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        return ClassifyManyAsync(Asynchronously(inputs), decode, topK, maxDegreeOfParallelism, cancellationToken);
    }

    /// <summary>The same pipeline over an asynchronous source (a channel, a paged listing), read as the pipeline has room.</summary>
    /// <inheritdoc cref="ClassifyManyAsync{T}(IEnumerable{T}, Func{T, CancellationToken, Task{RgbImage}}, int, int, CancellationToken)" path="/exception"/>
    public IAsyncEnumerable<ImageClassification<T>> ClassifyManyAsync<T>(IAsyncEnumerable<T> inputs, Func<T, CancellationToken, Task<RgbImage>> decode,
                                                                         int topK = 5, int maxDegreeOfParallelism = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(decode);
        return StartPipeline(inputs, async (input, tensor, ct) => preprocessor.Run(await decode(input, ct).ConfigureAwait(false), tensor), topK, maxDegreeOfParallelism, cancellationToken);
    }

    /// <summary>Checks the arguments at the call, then the pipeline over inputs that <paramref name="fill"/> reads and preprocesses into a tensor.</summary>
    private IAsyncEnumerable<ImageClassification<T>> StartPipeline<T>(IAsyncEnumerable<T> inputs, Func<T, float[], CancellationToken, Task> fill,
                                                                    int topK, int maxDegreeOfParallelism, CancellationToken cancellationToken)
    {
        CheckTopK(topK);
        ArgumentOutOfRangeException.ThrowIfNegative(maxDegreeOfParallelism);
        return Pipeline(inputs, fill, topK, maxDegreeOfParallelism == 0 ? Environment.ProcessorCount : maxDegreeOfParallelism, cancellationToken);
    }

    /// <summary>Reads an image file asynchronously, then decodes and preprocesses it into <paramref name="tensor"/> straight from its bytes.</summary>
    internal Task PreprocessFileAsync(string path, float[] tensor, CancellationToken cancellationToken) =>
        ImageDecoder.ReadFileAsync(path, Options.Decode, data =>
        {
            preprocessor.Run(data, tensor, Options.Decode);
            return tensor;
        }, cancellationToken);

    private static async IAsyncEnumerable<T> Asynchronously<T>(IEnumerable<T> items)
    {
        foreach (var item in items)
            yield return item;
        await Task.CompletedTask.ConfigureAwait(false);
    }

    private async IAsyncEnumerable<ImageClassification<T>> Pipeline<T>(IAsyncEnumerable<T> inputs, Func<T, float[], CancellationToken, Task> fill,
                                                                         int topK, int parallelism, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        int max = Options.MaxBatchSize, length = preprocessor.OutputLength, classes = Config.NumClasses;
        var pipeline = new InputPipeline(preprocessor, parallelism, max + parallelism + 1);
        // Grown to the largest batch seen, so that a call with one image holds one image's floats.
        var batch = Array.Empty<float>();
        var segment = new List<(int Index, T Input, Exception? Error)>(max);
        // While a batch runs, the pipeline decodes up to the next batch and `parallelism` more.
        await using var prepared = pipeline.RunAsync(inputs, fill, max + parallelism, cancellationToken).GetAsyncEnumerator(cancellationToken);
        for (bool more = true; more;)
        {
            // One segment: inputs in order until a full batch has decoded; failures keep their place in it.
            segment.Clear();
            int decoded = 0;
            while (decoded < max && (more = await prepared.MoveNextAsync().ConfigureAwait(false)))
            {
                var (index, input, tensor, error) = prepared.Current;
                if (tensor is not null)
                {
                    if (batch.Length < (decoded + 1) * length)
                        Array.Resize(ref batch, Math.Min(max, Math.Max(2 * decoded, 1)) * length);
                    tensor.CopyTo(batch, decoded++ * length);
                    pipeline.Return(tensor);
                }
                segment.Add((index, input, error));
            }
            cancellationToken.ThrowIfCancellationRequested();
            float[]? logits = decoded == 0 ? null
                : (await ForwardAsync(batch.AsMemory(0, decoded * length), decoded, false, cancellationToken).ConfigureAwait(false)).Logits;
            int b = 0;
            foreach (var (index, input, error) in segment)
                yield return error is not null
                    ? new ImageClassification<T>(index, input, null, error)
                    : new ImageClassification<T>(index, input, TopK(logits.AsSpan(b++ * classes, classes), topK), null);
        }
    }
}
