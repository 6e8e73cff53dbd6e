using System.Runtime.ExceptionServices;
using ToMe.Imaging;
using ToMe.Model;

namespace ToMe;

// Classify and ExtractFeatures for every input form: a file, encoded bytes, a stream, decoded pixels; sync and async.
public sealed partial class ToMeEngine
{
    /// <summary>Classifies an image file (JPEG, PNG, BMP, PPM/PGM; other formats through <see cref="DecodeOptions.ExternalDecoders"/>).</summary>
    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<Prediction> Classify(string path, int topK = 5)
    {
        CheckTopK(topK);
        return ClassifyTensor(Preprocess(path), topK);
    }

    /// <summary>Classifies an encoded image held in memory.</summary>
    /// <exception cref="InvalidImageException">The bytes are not a supported, intact image.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<Prediction> Classify(byte[] encoded, int topK = 5)
    {
        CheckTopK(topK);
        return ClassifyTensor(Preprocess(encoded), topK);
    }

    /// <inheritdoc cref="Classify(byte[], int)"/>
    public IReadOnlyList<Prediction> Classify(ReadOnlyMemory<byte> encoded, int topK = 5)
    {
        CheckTopK(topK);
        return ClassifyTensor(Preprocess(ImageDecoder.ArrayOf(encoded)), topK);
    }

    /// <summary>Classifies an encoded image read from a stream (read to its end; the caller keeps the stream).</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image, or longer than <see cref="DecodeOptions.MaxFileBytes"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<Prediction> Classify(Stream encoded, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        CheckTopK(topK);
        return ClassifyTensor(Preprocess(ImageDecoder.ReadAllAsync(encoded, Options.Decode, CancellationToken.None, synchronous: true).GetAwaiter().GetResult()), topK);
    }

    // Encoded input goes straight to the tensor (Preprocessor.Run(byte[])): a JPEG is decoded only as far as the crop reads.
    private IReadOnlyList<Prediction> ClassifyTensor(float[] tensor, int topK) => TopK(Logits(tensor, 1), topK);

    /// <summary>Classifies decoded pixels.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<Prediction> Classify(RgbImage image, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(image);
        return ClassifyBatch([image], topK)[0];
    }

    /// <summary>
    /// Classifies any sequence of decoded images, in forward passes of at most <see cref="EngineOptions.MaxBatchSize"/>; the
    /// sequence is read one batch at a time. Results are in input order.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IEnumerable<RgbImage> images, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ClassifyChunks(images, (image, tensor) => preprocessor.Run(image, tensor.Span), topK);
    }

    /// <summary>
    /// Forward passes of at most MaxBatchSize inputs, each chunk preprocessed in parallel first; a failure ends the call
    /// with the error of the first failing input in sequence order.
    /// </summary>
    private List<IReadOnlyList<Prediction>> ClassifyChunks<T>(IEnumerable<T> inputs, Action<T, Memory<float>> preprocess, int topK)
    {
        CheckTopK(topK);
        var results = new List<IReadOnlyList<Prediction>>();
        int classes = Config.NumClasses, n = preprocessor.OutputLength;
        foreach (var chunk in inputs.Chunk(Options.MaxBatchSize))
        {
            var batch = new float[checked(chunk.Length * n)];
            var errors = new Exception?[chunk.Length];
            Parallel.For(0, chunk.Length, i =>
            {
                try
                {
                    preprocess(chunk[i], batch.AsMemory(i * n, n));
                }
                catch (Exception e)
                {
                    errors[i] = e;
                }
            });
            if (Array.Find(errors, e => e is not null) is { } error)
                ExceptionDispatchInfo.Throw(error);
            var logits = Logits(batch, chunk.Length);
            for (int b = 0; b < chunk.Length; b++)
                results.Add(TopK(logits.AsSpan(b * classes, classes), topK));
        }
        return results;
    }

    /// <summary>
    /// Classifies any sequence of image files, decoding one batch at a time, in parallel (memory stays bounded by
    /// <see cref="EngineOptions.MaxBatchSize"/>). The first file that cannot be read ends the call with its error; for
    /// per-image errors and parallel decoding use <see cref="ClassifyManyAsync(IEnumerable{string}, int, int, CancellationToken)"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">A path has no file (or is a directory).</exception>
    /// <exception cref="InvalidImageException">A file is not a supported, intact image; the message names it.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IEnumerable<string> paths, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return ClassifyChunks(paths, (path, tensor) => ImageDecoder.ReadFile(path, Options.Decode, data => preprocessor.Run(data, tensor.Span, Options.Decode)), topK);
    }

    /// <summary>
    /// Classifies an image file on the thread pool: the file is read asynchronously, decoded and preprocessed, then the
    /// forward pass runs when the engine is free. The result equals <see cref="Classify(string, int)"/>'s.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1 (thrown at the call).</exception>
    public Task<IReadOnlyList<Prediction>> ClassifyAsync(string path, int topK = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        return ClassifyAsync(ct => ImageDecoder.ReadFileAsync(path, Options.Decode, data => preprocessor.Run(data, Options.Decode), ct), topK, cancellationToken);
    }

    /// <summary>Classifies an encoded image read asynchronously from a stream (to its end; the caller keeps the stream).</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image, or longer than <see cref="DecodeOptions.MaxFileBytes"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1 (thrown at the call).</exception>
    public Task<IReadOnlyList<Prediction>> ClassifyAsync(Stream encoded, int topK = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        return ClassifyAsync(async ct => preprocessor.Run(await ImageDecoder.ReadAllAsync(encoded, Options.Decode, ct).ConfigureAwait(false), Options.Decode),
            topK, cancellationToken);
    }

    /// <summary>Classifies an encoded image held in memory (a <c>byte[]</c> converts implicitly); the bytes must not change until the task completes.</summary>
    /// <exception cref="InvalidImageException">The bytes are not a supported, intact image.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1 (thrown at the call).</exception>
    public Task<IReadOnlyList<Prediction>> ClassifyAsync(ReadOnlyMemory<byte> encoded, int topK = 5, CancellationToken cancellationToken = default) =>
        ClassifyAsync(_ => Task.FromResult(preprocessor.Run(ImageDecoder.ArrayOf(encoded), Options.Decode)), topK, cancellationToken);

    /// <summary>Classifies decoded pixels on the thread pool.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1 (thrown at the call).</exception>
    public Task<IReadOnlyList<Prediction>> ClassifyAsync(RgbImage image, int topK = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        return ClassifyAsync(_ => Task.FromResult(preprocessor.Run(image)), topK, cancellationToken);
    }

    /// <summary>Preprocesses on the thread pool (<paramref name="tensorOf"/>), then runs one forward pass.</summary>
    private Task<IReadOnlyList<Prediction>> ClassifyAsync(Func<CancellationToken, Task<float[]>> tensorOf, int topK, CancellationToken cancellationToken)
    {
        CheckTopK(topK);
        return Run();

        async Task<IReadOnlyList<Prediction>> Run()
        {
            var tensor = await Task.Run(() => tensorOf(cancellationToken), cancellationToken).ConfigureAwait(false);
            var result = await ForwardAsync(tensor, 1, returnTokens: false, cancellationToken).ConfigureAwait(false);
            return TopK(result.Logits, topK);
        }
    }

    /// <summary>Decodes and preprocesses on the thread pool, runs one forward pass, and turns its result into the answer.</summary>
    private async Task<T> RunAsync<T>(Func<CancellationToken, Task<RgbImage>> decode, bool returnTokens,
                                      Func<RgbImage, ForwardResult, T> finish, CancellationToken cancellationToken)
    {
        var (image, tensor) = await Task.Run(async () =>
        {
            var decoded = await decode(cancellationToken).ConfigureAwait(false);
            return (decoded, preprocessor.Run(decoded));
        }, cancellationToken).ConfigureAwait(false);
        var result = await ForwardAsync(tensor, 1, returnTokens, cancellationToken).ConfigureAwait(false);
        return finish(image, result);
    }
}
