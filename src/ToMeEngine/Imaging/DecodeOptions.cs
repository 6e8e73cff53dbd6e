namespace ToMe.Imaging;

/// <summary>Limits and switches for <see cref="ImageDecoder"/>.</summary>
public sealed record DecodeOptions
{
    /// <summary>The defaults: 100 megapixels, 1 GiB files, PNG CRCs checked, no external decoders.</summary>
    public static DecodeOptions Default { get; } = new();

    /// <summary>
    /// Pictures declaring more pixels than this are refused before any pixel buffer is allocated, so a
    /// 40-byte header claiming 100000x100000 cannot exhaust memory.
    /// </summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Verify PNG chunk CRCs (PIL does too; a mismatch is reported as corruption).</summary>
    public bool CheckPngCrc { get; init; } = true;

    /// <summary>Files larger than this are refused when reading a path or stream.</summary>
    public long MaxFileBytes { get; init; } = 1L << 30;

    /// <summary>
    /// Decoders for formats the built-in ones lack (GIF, WebP, TIFF, arithmetic-coded JPEG, ...), asked in order: the first
    /// whose <see cref="IExternalImageDecoder.CanDecode"/> accepts the sniffed format decodes it. Empty by default.
    /// </summary>
    public IReadOnlyList<IExternalImageDecoder> ExternalDecoders { get; init; } = [];

    /// <summary>Checks the limits and decoders, so that a bad setting fails where it is given, not as every image's error.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit is below 1.</exception>
    /// <exception cref="ArgumentNullException"><see cref="ExternalDecoders"/> is null or holds null.</exception>
    public void Validate()
    {
        if (MaxPixels < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxPixels), MaxPixels, "must be at least 1");
        if (MaxFileBytes < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxFileBytes), MaxFileBytes, "must be at least 1");
        ArgumentNullException.ThrowIfNull(ExternalDecoders);
        if (ExternalDecoders.Any(d => d is null))
            throw new ArgumentNullException(nameof(ExternalDecoders), "holds a null decoder");
    }

    /// <summary>The first external decoder that reads <paramref name="format"/>, or null.</summary>
    public IExternalImageDecoder? ExternalDecoderFor(ImageFormat format) => ExternalDecoders.FirstOrDefault(d => d.CanDecode(format));

    /// <summary>Refuses dimensions that are not positive or exceed <see cref="MaxPixels"/>, before pixels are allocated (for decoders, built-in or external).</summary>
    /// <exception cref="InvalidImageException">The dimensions are refused; the message names <paramref name="format"/>.</exception>
    public void CheckSize(string format, long width, long height)
    {
        if (width <= 0 || height <= 0)
            throw new InvalidImageException($"{format}: invalid dimensions {width}x{height}");
        if (width * height > MaxPixels)
            throw new InvalidImageException($"{format}: {width}x{height} = {width * height} pixels exceeds the limit of {MaxPixels} (DecodeOptions.MaxPixels)");
    }
}
