using ToMe.Imaging;

namespace ToMe.Serving;

/// <summary>
/// One image to classify: a file path, encoded bytes, a stream of encoded bytes, decoded pixels, or an image already
/// preprocessed as the model expects (<see cref="FromTensor"/>). Converts implicitly
/// from each, so <c>ClassifyAsync("cat.jpg")</c> and <c>ClassifyAsync(bytes)</c> both work. Immutable.
/// </summary>
public sealed class ImageInput
{
    private readonly string? path;
    private readonly byte[]? bytes;
    private readonly Stream? stream;
    private readonly RgbImage? pixels;

    private ImageInput(string? path, byte[]? bytes, Stream? stream, RgbImage? pixels, float[]? tensor = null)
    {
        this.path = path;
        this.bytes = bytes;
        this.stream = stream;
        this.pixels = pixels;
        Tensor = tensor;
    }

    /// <summary>The preprocessed image given to <see cref="FromTensor"/>, else null.</summary>
    internal float[]? Tensor { get; }

    /// <summary>An image file (JPEG, PNG, BMP, PPM/PGM), read when the request is preprocessed.</summary>
    public static ImageInput FromFile(string path) => new(path ?? throw new ArgumentNullException(nameof(path)), null, null, null);

    /// <summary>An encoded image in memory; the array is not copied and must not change until the call completes.</summary>
    public static ImageInput FromBytes(byte[] encoded) => new(null, encoded ?? throw new ArgumentNullException(nameof(encoded)), null, null);

    /// <summary>An encoded image read (asynchronously, to its end) from a stream; the caller keeps ownership of the stream.</summary>
    public static ImageInput FromStream(Stream encoded) => new(null, null, encoded ?? throw new ArgumentNullException(nameof(encoded)), null);

    /// <summary>Decoded pixels.</summary>
    public static ImageInput FromImage(RgbImage image) => new(null, null, null, image ?? throw new ArgumentNullException(nameof(image)));

    /// <summary>
    /// An image already resized, cropped and normalized as the model's eval transform does: [3, S, S] float32, channel-major
    /// (one row of the input of <see cref="ToMeEngine.Logits(ReadOnlySpan{float}, int)"/>). The array is not copied and must not change until the call
    /// completes; a length other than 3·S·S fails the call with <see cref="ArgumentException"/>.
    /// </summary>
    public static ImageInput FromTensor(float[] chw) => new(null, null, null, null, chw ?? throw new ArgumentNullException(nameof(chw)));

    /// <summary><see cref="FromFile"/>.</summary>
    public static implicit operator ImageInput(string path) => FromFile(path);

    /// <summary><see cref="FromBytes"/>.</summary>
    public static implicit operator ImageInput(byte[] encoded) => FromBytes(encoded);

    /// <summary><see cref="FromStream"/>.</summary>
    public static implicit operator ImageInput(Stream encoded) => FromStream(encoded);

    /// <summary><see cref="FromImage"/>.</summary>
    public static implicit operator ImageInput(RgbImage image) => FromImage(image);

    /// <summary>
    /// What the input needs before decoding can start without waiting on I/O that a client paces: a stream is read to its
    /// end (asynchronously: server request bodies forbid synchronous reads, and a slow client must not hold a thread or a
    /// decoder); every other input is returned as it is.
    /// </summary>
    /// <exception cref="InvalidImageException">The stream is over <see cref="DecodeOptions.MaxFileBytes"/>.</exception>
    internal async ValueTask<ImageInput> BufferAsync(DecodeOptions options, CancellationToken cancellationToken) =>
        stream is null ? this : FromBytes(await ImageDecoder.ReadAllAsync(stream, options, cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Decodes and preprocesses a file, bytes or pixels (a stream after <see cref="BufferAsync"/>) into <paramref name="tensor"/>
    /// on the calling thread: encoded input straight from its bytes, decoding only what the crop reads.
    /// </summary>
    /// <exception cref="InvalidImageException">The input is not a supported, intact image.</exception>
    internal void Preprocess(Preprocessor preprocessor, DecodeOptions options, float[] tensor)
    {
        if (pixels is not null)
            preprocessor.Run(pixels, tensor);
        else if (bytes is not null)
            preprocessor.Run(bytes, tensor, options);
        else if (path is not null)
            ImageDecoder.ReadFile(path, options, data => preprocessor.Run(data, tensor, options));
        else
            throw new InvalidOperationException("a stream input is preprocessed after BufferAsync");
    }

    /// <summary>What the input is, for messages: "file PATH", "N encoded bytes", "stream", the tensor's length or the picture's size.</summary>
    public override string ToString() =>
        path is not null ? $"file {path}" : bytes is not null ? $"{bytes.Length} encoded bytes" : stream is not null ? "stream"
        : Tensor is not null ? $"preprocessed tensor of {Tensor.Length} values" : pixels!.ToString();
}
