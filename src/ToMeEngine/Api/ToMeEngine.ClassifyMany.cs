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
/// <see cref="InvalidImageException"/>), or <see cref="ArithmeticException"/> where its logits were not finite; null on success.</param>
public sealed record ImageClassification<TInput>(int Index, TInput Input, IReadOnlyList<Prediction>? Predictions, Exception? Error)
{
    /// <summary>True when the input was classified (<see cref="Predictions"/> is set), false when it failed (<see cref="Error"/> is set).</summary>
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
    /// <c>2 × MaxBatchSize + maxDegreeOfParallelism</c> decoded images wait for a forward pass, however long the sequence
    /// (the next batch among them, when it has decoded: a GPU uploads it while the batch before it runs).
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
        StartPipeline(InputPipeline.Sequence(paths ?? throw new ArgumentNullException(nameof(paths))),
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
        return ClassifyManyAsync(InputPipeline.Sequence(inputs), decode, topK, maxDegreeOfParallelism, cancellationToken);
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

    private async IAsyncEnumerable<ImageClassification<T>> Pipeline<T>(IAsyncEnumerable<T> inputs, Func<T, float[], CancellationToken, Task> fill,
                                                                         int topK, int parallelism, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ThrowIfUnusable(); // before any input is read
        int max = Options.MaxBatchSize, length = preprocessor.OutputLength, classes = Config.NumClasses;
        var pipeline = new InputPipeline(preprocessor, parallelism, max + parallelism + 1);
        // The segment that runs and the one after it: when the next one has fully decoded by the time a forward starts, the
        // forward is told its images and a GPU uploads them while it runs. A forward never waits for the next segment.
        var current = new Segment<T>(length, max);
        var following = new Segment<T>(length, max);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // While a batch runs, the pipeline decodes up to the next batch and `parallelism` more.
        var prepared = pipeline.RunAsync(inputs, fill, max + parallelism, stop.Token).GetAsyncEnumerator(stop.Token);
        Task<bool>? pending = null; // a read of the pipeline that was not ready when the next segment looked ahead
        bool more = true;
        try
        {
            await Fill(current, wait: true).ConfigureAwait(false);
            while (current.Items.Count > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ThrowIfUnusable(); // also when the segment holds only inputs that failed to read, and runs no forward
                await Fill(following, wait: false).ConfigureAwait(false);
                var next = following.Decoded > 0 && (following.Decoded == max || !more) ? following.Batch : default;
                float[]? logits = current.Decoded == 0 ? null
                    : (await ForwardAsync(current.Batch, current.Decoded, false, cancellationToken, next).ConfigureAwait(false)).Logits;
                int b = 0;
                foreach (var (index, input, error) in current.Items)
                    yield return error is not null ? new ImageClassification<T>(index, input, null, error)
                        : Answer(index, input, logits.AsSpan(b++ * classes, classes), topK);
                (current, following) = (following, current);
                following.Clear();
                await Fill(current, wait: true).ConfigureAwait(false);
            }
        }
        finally
        {
            // An enumerator cannot be disposed while a read is under way: stop the decoders, which ends it.
            if (pending is not null)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await ((Task)pending).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            await prepared.DisposeAsync().ConfigureAwait(false);
        }

        // Inputs in order until the segment holds a full batch of decoded images (failures keep their place in it), or,
        // without `wait`, until the next input has not decoded yet.
        async Task Fill(Segment<T> segment, bool wait)
        {
            while (more && segment.Decoded < max)
            {
                var read = pending is { } started ? new ValueTask<bool>(started) : prepared.MoveNextAsync();
                pending = null;
                if (!wait && !read.IsCompleted)
                {
                    pending = read.AsTask();
                    return;
                }
                if (!(more = await read.ConfigureAwait(false)))
                    return;
                segment.Add(prepared.Current, pipeline);
            }
        }
    }

    /// <summary>One input's result; logits that give no probabilities fail this input alone, as a bad file does.</summary>
    private ImageClassification<T> Answer<T>(int index, T input, ReadOnlySpan<float> logits, int topK)
    {
        try
        {
            return new ImageClassification<T>(index, input, TopK(logits, topK), null);
        }
        catch (ArithmeticException e)
        {
            return new ImageClassification<T>(index, input, null, e);
        }
    }

    /// <summary>Up to a batch of consecutive inputs, failures in their place, and the decoded images side by side.</summary>
    private sealed class Segment<T>(int length, int max)
    {
        // Pinned, so that a batch announced to the GPU as the next one is at the same address when it runs. Grown to the
        // largest batch seen, so that a call with one image holds one image's floats.
        private float[] images = [];

        public List<(int Index, T Input, Exception? Error)> Items { get; } = new(max);

        public int Decoded { get; private set; }

        public ReadOnlyMemory<float> Batch => images.AsMemory(0, Decoded * length);

        public void Add(PreparedInput<T> input, InputPipeline pipeline)
        {
            if (input.Tensor is { } tensor)
            {
                if (images.Length < (Decoded + 1) * length)
                {
                    var grown = GC.AllocateUninitializedArray<float>(Math.Min(max, Math.Max(2 * Decoded, 1)) * length, pinned: true);
                    images.AsSpan(0, Decoded * length).CopyTo(grown);
                    images = grown;
                }
                tensor.CopyTo(images, Decoded++ * length);
                pipeline.Return(tensor);
            }
            Items.Add((input.Index, input.Input, input.Error));
        }

        public void Clear()
        {
            Items.Clear();
            Decoded = 0;
        }
    }
}
