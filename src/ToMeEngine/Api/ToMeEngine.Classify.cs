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
        return ClassifyTensor(() => Preprocess(path), topK);
    }

    /// <summary>Classifies an encoded image held in memory.</summary>
    /// <exception cref="InvalidImageException">The bytes are not a supported, intact image.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<Prediction> Classify(byte[] encoded, int topK = 5)
    {
        CheckTopK(topK);
        return ClassifyTensor(() => Preprocess(encoded), topK);
    }

    /// <inheritdoc cref="Classify(byte[], int)"/>
    public IReadOnlyList<Prediction> Classify(ReadOnlyMemory<byte> encoded, int topK = 5)
    {
        CheckTopK(topK);
        return ClassifyTensor(() => Preprocess(ImageDecoder.ArrayOf(encoded)), topK);
    }

    /// <summary>Classifies an encoded image read from a stream (read to its end; the caller keeps the stream).</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image, or longer than <see cref="DecodeOptions.MaxFileBytes"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<Prediction> Classify(Stream encoded, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        CheckTopK(topK);
        return ClassifyTensor(() => Preprocess(ImageDecoder.ReadAllAsync(encoded, Options.Decode, CancellationToken.None, synchronous: true).GetAwaiter().GetResult()), topK);
    }

    // Encoded input goes straight to the tensor (Preprocessor.Run(byte[])): a JPEG is decoded only as far as the crop reads.
    // A disposed engine refuses the call before the input is read. The engine's own preprocessing needs none of the checks
    // of a caller's tensors (Logits).
    private IReadOnlyList<Prediction> ClassifyTensor(Func<float[]> tensor, int topK)
    {
        ThrowIfUnusable();
        return TopK(Forward(tensor(), 1, logitsOnly).Logits, topK);
    }

    /// <summary>Classifies decoded pixels.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<Prediction> Classify(RgbImage image, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckTopK(topK);
        return ClassifyTensor(() => preprocessor.Run(image), topK);
    }

    /// <summary>
    /// Classifies any sequence of decoded images, in forward passes of at most <see cref="EngineOptions.MaxBatchSize"/>.
    /// The images are resized and normalized on every core, ahead of the forward passes; the sequence is read as the
    /// pipeline has room. Results are in input order.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IEnumerable<RgbImage> images, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ClassifyAll(images, (image, tensor, _) =>
        {
            preprocessor.Run(image ?? throw new ArgumentNullException(nameof(images), "the sequence holds a null image"), tensor);
            return Task.CompletedTask;
        }, topK);
    }

    /// <summary>
    /// Classifies any sequence of image files, read and decoded on every core ahead of the forward passes (memory stays
    /// bounded by <see cref="EngineOptions.MaxBatchSize"/> and the core count). The first file, in input order, that cannot
    /// be read ends the call with its error; for per-image errors use
    /// <see cref="ClassifyManyAsync(IEnumerable{string}, int, int, CancellationToken)"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">A path has no file (or is a directory).</exception>
    /// <exception cref="InvalidImageException">A file is not a supported, intact image; the message names it.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IEnumerable<string> paths, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return ClassifyAll(paths, PreprocessFileAsync, topK);
    }

    /// <summary>The synchronous form of the ClassifyManyAsync pipeline: every result, or the first error in input order.</summary>
    private IReadOnlyList<IReadOnlyList<Prediction>> ClassifyAll<T>(IEnumerable<T> inputs, Func<T, float[], CancellationToken, Task> fill, int topK)
    {
        CheckTopK(topK);
        var results = new List<IReadOnlyList<Prediction>>();
        foreach (var result in Pipeline(InputPipeline.Sequence(inputs), fill, topK, Environment.ProcessorCount, CancellationToken.None).ToBlockingEnumerable())
        {
            if (!result.Succeeded)
                ExceptionDispatchInfo.Throw(result.Error);
            results.Add(result.Predictions);
        }
        return results;
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
            ThrowIfUnusable();
            var tensor = await Task.Run(() => tensorOf(cancellationToken), cancellationToken).ConfigureAwait(false);
            var result = await ForwardAsync(tensor, 1, returnTokens: false, cancellationToken).ConfigureAwait(false);
            return TopK(result.Logits, topK);
        }
    }

    /// <summary>Decodes and preprocesses on the thread pool, runs one forward pass, and turns its result into the answer.</summary>
    private async Task<T> RunAsync<T>(Func<CancellationToken, Task<RgbImage>> decode, bool returnTokens,
                                      Func<RgbImage, ForwardResult, T> finish, CancellationToken cancellationToken)
    {
        ThrowIfUnusable();
        var (image, tensor) = await Task.Run(async () =>
        {
            var decoded = await decode(cancellationToken).ConfigureAwait(false);
            return (decoded, preprocessor.Run(decoded));
        }, cancellationToken).ConfigureAwait(false);
        var result = await ForwardAsync(tensor, 1, returnTokens, cancellationToken).ConfigureAwait(false);
        return finish(image, result);
    }
}
