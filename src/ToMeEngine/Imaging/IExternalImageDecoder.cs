namespace ToMe.Imaging;

/// <summary>
/// A decoder from an image library (ToMeEngine.SkiaSharp, ToMeEngine.ImageSharp) for formats the built-in decoders lack:
/// list it in <see cref="DecodeOptions.ExternalDecoders"/> and <see cref="ImageDecoder"/> hands it those formats. Its pixels
/// are that library's, not necessarily PIL's: only the built-in decoders are exact to timm's preprocessing.
/// </summary>
public interface IExternalImageDecoder
{
    /// <summary>The library's name, for messages ("SkiaSharp").</summary>
    string Name { get; }

    /// <summary>Whether this decoder reads <paramref name="format"/> here (false, for example, where its native library is missing).</summary>
    bool CanDecode(ImageFormat format);

    /// <summary>Decodes <paramref name="data"/>, sniffed as <paramref name="format"/>, to RGB (alpha dropped, the first frame of an animation).</summary>
    /// <exception cref="InvalidImageException">The data is corrupt or declares more than <see cref="DecodeOptions.MaxPixels"/> pixels.</exception>
    RgbImage Decode(byte[] data, ImageFormat format, DecodeOptions options);
}
