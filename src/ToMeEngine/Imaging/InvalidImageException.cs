namespace ToMe.Imaging;

/// <summary>
/// The one exception the decoders throw for input they cannot decode: unknown format, truncated or corrupt
/// data, declared sizes over <see cref="DecodeOptions.MaxPixels"/>, or features outside what is supported.
/// The message names the format and the problem.
/// </summary>
public sealed class InvalidImageException : FormatException
{
    public InvalidImageException(string message) : base(message) { }

    public InvalidImageException(string message, Exception inner) : base(message, inner) { }
}
