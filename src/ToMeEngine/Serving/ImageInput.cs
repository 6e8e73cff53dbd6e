using ToMe.Imaging;

namespace ToMe.Serving;

/// <summary>
/// One image to classify: a file path, encoded bytes, a stream of encoded bytes, or decoded pixels. Converts implicitly
/// from each, so <c>ClassifyAsync("cat.jpg")</c> and <c>ClassifyAsync(bytes)</c> both work. Immutable.
/// </summary>
public sealed class ImageInput
{
    private readonly string? path;
    private readonly byte[]? bytes;
    private readonly Stream? stream;
    private readonly RgbImage? pixels;

    private ImageInput(string? path, byte[]? bytes, Stream? stream, RgbImage? pixels)
    {
        this.path = path;
        this.bytes = bytes;
        this.stream = stream;
        this.pixels = pixels;
    }

    /// <summary>An image file (JPEG, PNG, BMP, PPM/PGM), read when the request is preprocessed.</summary>
    public static ImageInput FromFile(string path) => new(path ?? throw new ArgumentNullException(nameof(path)), null, null, null);

    /// <summary>An encoded image in memory; the array is not copied and must not change until the call completes.</summary>
    public static ImageInput FromBytes(byte[] encoded) => new(null, encoded ?? throw new ArgumentNullException(nameof(encoded)), null, null);

    /// <summary>An encoded image read (asynchronously, to its end) from a stream; the caller keeps ownership of the stream.</summary>
    public static ImageInput FromStream(Stream encoded) => new(null, null, encoded ?? throw new ArgumentNullException(nameof(encoded)), null);

    /// <summary>Decoded pixels.</summary>
    public static ImageInput FromImage(RgbImage image) => new(null, null, null, image ?? throw new ArgumentNullException(nameof(image)));

    public static implicit operator ImageInput(string path) => FromFile(path);

    public static implicit operator ImageInput(byte[] encoded) => FromBytes(encoded);

    public static implicit operator ImageInput(Stream encoded) => FromStream(encoded);

    public static implicit operator ImageInput(RgbImage image) => FromImage(image);

    /// <summary>Decodes and preprocesses into tensor[0..length): encoded input straight from its bytes, decoding only what the crop reads.</summary>
    /// <exception cref="InvalidImageException">The input is not a supported, intact image (or the stream is over the size limit).</exception>
    internal async ValueTask PreprocessAsync(Preprocessor preprocessor, DecodeOptions options, float[] tensor, int length, CancellationToken cancellationToken)
    {
        if (pixels is not null)
        {
            preprocessor.Run(pixels, tensor.AsSpan(0, length));
            return;
        }
        if (bytes is not null)
        {
            preprocessor.Run(bytes, tensor.AsSpan(0, length), options);
            return;
        }
        if (path is not null)
        {
            ImageDecoder.FromFile(path, options, data =>
            {
                preprocessor.Run(data, tensor.AsSpan(0, length), options);
                return true;
            });
            return;
        }
        // Read asynchronously: server request bodies forbid synchronous reads, and a slow client must not hold a thread.
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream!.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > options.MaxFileBytes)
                throw new InvalidImageException($"input larger than {options.MaxFileBytes} bytes (DecodeOptions.MaxFileBytes)");
            buffer.Write(chunk, 0, n);
        }
        cancellationToken.ThrowIfCancellationRequested();
        preprocessor.Run(buffer.ToArray(), tensor.AsSpan(0, length), options);
    }

    public override string ToString() =>
        path is not null ? $"file {path}" : bytes is not null ? $"{bytes.Length} encoded bytes" : stream is not null ? "stream" : pixels!.ToString();
}
