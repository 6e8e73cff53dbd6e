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
            (path, ct) => ImageDecoder.ReadFileAsync(path, Options.Decode, data => preprocessor.Run(data, Options.Decode), ct),
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
        return StartPipeline(inputs, async (input, ct) => preprocessor.Run(await decode(input, ct).ConfigureAwait(false)), topK, maxDegreeOfParallelism, cancellationToken);
    }

    /// <summary>Checks the arguments at the call, then the pipeline over inputs that <paramref name="tensorOf"/> reads and preprocesses.</summary>
    private IAsyncEnumerable<ImageClassification<T>> StartPipeline<T>(IAsyncEnumerable<T> inputs, Func<T, CancellationToken, Task<float[]>> tensorOf,
                                                                    int topK, int maxDegreeOfParallelism, CancellationToken cancellationToken)
    {
        CheckTopK(topK);
        ArgumentOutOfRangeException.ThrowIfNegative(maxDegreeOfParallelism);
        return Pipeline(inputs, tensorOf, topK, maxDegreeOfParallelism == 0 ? Environment.ProcessorCount : maxDegreeOfParallelism, cancellationToken);
    }

    private static async IAsyncEnumerable<T> Asynchronously<T>(IEnumerable<T> items)
    {
        foreach (var item in items)
            yield return item;
        await Task.CompletedTask.ConfigureAwait(false);
    }

    private async IAsyncEnumerable<ImageClassification<T>> Pipeline<T>(IAsyncEnumerable<T> inputs, Func<T, CancellationToken, Task<float[]>> tensorOf,
                                                                         int topK, int parallelism, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Started decodes, in input order: the head is always the oldest, so it never waits behind later inputs.
        var pending = new Queue<(int Index, T Input, Task<float[]> Tensor)>();
        var running = new int[1];
        int window = Options.MaxBatchSize + parallelism, next = 0, length = preprocessor.OutputLength, classes = Config.NumClasses;
        bool more = true;
        var source = inputs.GetAsyncEnumerator(stop.Token);
        try
        {
            while (true)
            {
                var segment = new List<(int Index, T Input, float[]? Tensor, Exception? Error)>();
                int decoded = 0;
                // One segment: inputs in order until a full batch has decoded; failures keep their place in it.
                while (decoded < Options.MaxBatchSize)
                {
                    await Fill().ConfigureAwait(false);
                    if (pending.Count == 0)
                        break;
                    var (index, item, task) = pending.Dequeue();
                    try
                    {
                        segment.Add((index, item, await task.ConfigureAwait(false), null));
                        decoded++;
                    }
                    catch (Exception e)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        segment.Add((index, item, null, e));
                    }
                }
                cancellationToken.ThrowIfCancellationRequested();
                if (segment.Count == 0)
                    yield break;
                float[]? logits = null;
                if (decoded > 0)
                {
                    var batch = new float[decoded * length];
                    int row = 0;
                    foreach (var s in segment)
                        if (s.Tensor is not null)
                            s.Tensor.CopyTo(batch, row++ * length);
                    await Fill().ConfigureAwait(false); // the next images decode while this batch runs
                    logits = (await ForwardAsync(batch, decoded, false, cancellationToken).ConfigureAwait(false)).Logits;
                }
                int b = 0;
                foreach (var s in segment)
                    yield return s.Tensor is null
                        ? new ImageClassification<T>(s.Index, s.Input, null, s.Error)
                        : new ImageClassification<T>(s.Index, s.Input, TopK(logits.AsSpan(b++ * classes, classes), topK), null);
            }
        }
        finally
        {
            // The consumer stopped early, failed or was cancelled: stop the decoders and let none run unobserved.
            await stop.CancelAsync().ConfigureAwait(false);
            foreach (var (_, _, task) in pending)
                await ((Task)task).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await source.DisposeAsync().ConfigureAwait(false);
        }

        // Starts decodes in input order while fewer than `parallelism` run and fewer than `window` tensors are held.
        async Task Fill()
        {
            while (more && pending.Count < window && Volatile.Read(ref running[0]) < parallelism)
            {
                if (!await source.MoveNextAsync().ConfigureAwait(false))
                {
                    more = false;
                    break;
                }
                var input = source.Current;
                Interlocked.Increment(ref running[0]);
                pending.Enqueue((next++, input, Task.Run(async () =>
                {
                    try
                    {
                        return await tensorOf(input, stop.Token).ConfigureAwait(false);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref running[0]);
                    }
                }, stop.Token)));
            }
        }
    }
}
