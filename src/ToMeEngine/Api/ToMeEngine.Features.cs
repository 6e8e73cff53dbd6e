using ToMe.Imaging;
using ToMe.Model;
using ToMe.Merging;

namespace ToMe;

// ExtractFeatures for the same input forms as Classify.
public sealed partial class ToMeEngine
{
    /// <summary>Runs one image and unmerges the final tokens back onto the patch grid.</summary>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public DenseFeatures ExtractFeatures(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return Features(Forward(Preprocess(image), 1, ForwardOptionsFor(returnTokens: true))); // own preprocessing: unchecked
    }

    /// <summary>The dense features of an image file.</summary>
    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image.</exception>
    public DenseFeatures ExtractFeatures(string path) => ExtractFeatures(() => ImageDecoder.Decode(path, Options.Decode));

    /// <summary>The dense features of an encoded image held in memory.</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    public DenseFeatures ExtractFeatures(byte[] encoded) => ExtractFeatures(() => ImageDecoder.Decode(encoded, Options.Decode));

    /// <inheritdoc cref="ExtractFeatures(byte[])"/>
    public DenseFeatures ExtractFeatures(ReadOnlyMemory<byte> encoded) => ExtractFeatures(() => ImageDecoder.Decode(encoded, Options.Decode));

    /// <summary>The dense features of an encoded image read from a stream (to its end; the caller keeps the stream).</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    public DenseFeatures ExtractFeatures(Stream encoded) => ExtractFeatures(() => ImageDecoder.Decode(encoded, Options.Decode));

    /// <summary>A disposed engine refuses the call before the input is read.</summary>
    private DenseFeatures ExtractFeatures(Func<RgbImage> decode)
    {
        ThrowIfUnusable();
        return ExtractFeatures(decode());
    }

    /// <summary><see cref="ExtractFeatures(string)"/> on the thread pool, the file read asynchronously.</summary>
    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public Task<DenseFeatures> ExtractFeaturesAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        return ExtractFeaturesAsync(ct => ImageDecoder.DecodeAsync(path, Options.Decode, ct), cancellationToken);
    }

    /// <summary><see cref="ExtractFeatures(Stream)"/> on the thread pool, the stream read asynchronously.</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public Task<DenseFeatures> ExtractFeaturesAsync(Stream encoded, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        return ExtractFeaturesAsync(ct => ImageDecoder.DecodeAsync(encoded, Options.Decode, ct), cancellationToken);
    }

    /// <summary><see cref="ExtractFeatures(ReadOnlyMemory{byte})"/> on the thread pool.</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public Task<DenseFeatures> ExtractFeaturesAsync(ReadOnlyMemory<byte> encoded, CancellationToken cancellationToken = default) =>
        ExtractFeaturesAsync(_ => Task.FromResult(ImageDecoder.Decode(encoded, Options.Decode)), cancellationToken);

    /// <summary><see cref="ExtractFeatures(RgbImage)"/> on the thread pool.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired before the forward pass started.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public Task<DenseFeatures> ExtractFeaturesAsync(RgbImage image, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        return ExtractFeaturesAsync(_ => Task.FromResult(image), cancellationToken);
    }

    private Task<DenseFeatures> ExtractFeaturesAsync(Func<CancellationToken, Task<RgbImage>> decode, CancellationToken cancellationToken) =>
        RunAsync(decode, returnTokens: true, (_, result) => Features(result), cancellationToken);

    private DenseFeatures Features(ForwardResult result)
    {
        int c = Config.EmbedDim, grid = Config.GridSize;
        var patchGrid = Unmerge.PatchGrid(result.Tokens!, result.Groups, 1, result.FinalTokens, c, Config.PrefixTokens, grid, grid);
        return new DenseFeatures(result.FinalTokens, c, result.Tokens!, result.Size, result.Groups, grid, patchGrid);
    }
}
