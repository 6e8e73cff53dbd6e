namespace ToMe.Imaging;

/// <summary>
/// The one exception the decoders throw for input they cannot decode: unknown format, truncated or corrupt
/// data, declared sizes over <see cref="DecodeOptions.MaxPixels"/>, or features outside what is supported.
/// The message names the format and the problem.
/// </summary>
public sealed class InvalidImageException : FormatException
{
    /// <summary>An undecodable image; <paramref name="message"/> names the format (and the file, when there is one) and the problem.</summary>
    public InvalidImageException(string message) : base(message) { }

    /// <summary>An undecodable image, reported by <paramref name="inner"/> (e.g. an external decoder's own exception).</summary>
    public InvalidImageException(string message, Exception inner) : base(message, inner) { }
}
