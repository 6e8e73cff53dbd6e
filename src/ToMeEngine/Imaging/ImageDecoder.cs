using System.Runtime.InteropServices;
using ToMe.Imaging.Jpeg;

namespace ToMe.Imaging;

/// <summary>
/// Decodes JPEG, PNG, BMP and binary PPM/PGM into <see cref="RgbImage"/>, with the pixels PIL produces
/// for <c>Image.open(f).convert("RGB")</c> (JPEG through libjpeg-turbo's default arithmetic). The format is
/// sniffed from magic bytes, never from the file name; other formats (GIF, WebP, TIFF, HEIF, AVIF, JPEG XL,
/// JPEG 2000, arithmetic-coded JPEG) are named in the error, or decoded by <see cref="DecodeOptions.ExternalDecoders"/>.
/// EXIF orientation is ignored, as timm ignores it.
/// </summary>
/// <remarks>
/// Undecodable data is an <see cref="InvalidImageException"/>. A path where no file exists (missing, or a directory) is a
/// <see cref="FileNotFoundException"/>; other I/O failures (permissions, a failing disk) are the <see cref="IOException"/> or
/// <see cref="UnauthorizedAccessException"/> the file system raised.
/// </remarks>
public static class ImageDecoder
{
    /// <summary>The format <paramref name="data"/> starts like (for JPEG, its frame header decides the coding).</summary>
    public static ImageFormat Sniff(ReadOnlySpan<byte> data) => ImageFormats.Sniff(data);

    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    public static RgbImage Decode(ReadOnlySpan<byte> data, DecodeOptions? options = null) =>
        Decode(data.ToArray(), options);

    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    public static RgbImage Decode(byte[] data, DecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        options ??= DecodeOptions.Default;
        if (data.Length == 0)
            throw new InvalidImageException("empty input (0 bytes)");
        var format = Sniff(data);
        return Guarded(() => format switch
        {
            ImageFormat.Jpeg => JpegDecoder.Decode(data, options),
            ImageFormat.Png => PngDecoder.Decode(data, options),
            ImageFormat.Bmp => BmpDecoder.Decode(data, options),
            ImageFormat.Pnm => PnmDecoder.Decode(data, options),
            _ => (options.ExternalDecoderFor(format) ?? throw Unsupported(format, data, options)).Decode(data, format, options),
        });
    }

    /// <summary>
    /// Decodes into pooled planes; a JPEG fills only the pixels <paramref name="regionOf"/> (called with the
    /// picture's size) asks for. The caller disposes the result.
    /// </summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    internal static PlanarImage DecodePlanar(byte[] data, DecodeOptions options, Func<int, int, PixelRegion>? regionOf)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0 || Sniff(data) != ImageFormat.Jpeg)
            return PlanarImage.From(Decode(data, options));
        return Guarded(() => JpegDecoder.DecodePlanar(data, options, regionOf));
    }

    private static T Guarded<T>(Func<T> decode)
    {
        try
        {
            return decode();
        }
        catch (InvalidImageException)
        {
            throw;
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidDataException
                                      or OverflowException or EndOfStreamException)
        {
            // Decoders validate as they go; this net turns a missed check into the documented error.
            throw new InvalidImageException($"corrupt image data ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Decodes an encoded image held in memory; no copy when it spans a whole array.</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image.</exception>
    internal static RgbImage Decode(ReadOnlyMemory<byte> data, DecodeOptions? options) => Decode(ArrayOf(data), options);

    /// <summary>Reads <paramref name="stream"/> to its end and decodes it.</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image, or longer than <see cref="DecodeOptions.MaxFileBytes"/>.</exception>
    public static RgbImage Decode(Stream stream, DecodeOptions? options = null) =>
        DecodeAsync(stream, options, CancellationToken.None, synchronous: true).GetAwaiter().GetResult();

    /// <summary>Reads <paramref name="stream"/> asynchronously to its end, then decodes it (on the calling thread).</summary>
    /// <exception cref="InvalidImageException">The data is not a supported, intact image, or longer than <see cref="DecodeOptions.MaxFileBytes"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired while reading.</exception>
    public static Task<RgbImage> DecodeAsync(Stream stream, DecodeOptions? options = null, CancellationToken cancellationToken = default) =>
        DecodeAsync(stream, options, cancellationToken, synchronous: false);

    private static async Task<RgbImage> DecodeAsync(Stream stream, DecodeOptions? options, CancellationToken cancellationToken, bool synchronous)
    {
        options ??= DecodeOptions.Default;
        return Decode(await ReadAllAsync(stream, options, cancellationToken, synchronous).ConfigureAwait(false), options);
    }

    /// <summary>A stream's bytes to its end, refused past <see cref="DecodeOptions.MaxFileBytes"/>.</summary>
    /// <exception cref="InvalidImageException">The stream is longer than <see cref="DecodeOptions.MaxFileBytes"/>.</exception>
    /// <exception cref="ArgumentException">The stream cannot be read: closed, or write-only.</exception>
    internal static async Task<byte[]> ReadAllAsync(Stream stream, DecodeOptions options, CancellationToken cancellationToken, bool synchronous = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        // A closed stream would throw ObjectDisposedException, which callers take for a disposed engine.
        if (!stream.CanRead)
            throw new ArgumentException("the image stream cannot be read: it is closed or write-only", nameof(stream));
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        // Server request bodies forbid synchronous reads, and a slow client must not hold a thread: both paths share the loop.
        while ((n = synchronous ? stream.Read(chunk, 0, chunk.Length) : await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > options.MaxFileBytes)
                throw new InvalidImageException($"input larger than {options.MaxFileBytes} bytes (DecodeOptions.MaxFileBytes)");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>The bytes of an encoded image held in memory; no copy when they span a whole array.</summary>
    internal static byte[] ArrayOf(ReadOnlyMemory<byte> data) =>
        MemoryMarshal.TryGetArray(data, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array : data.ToArray();

    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image; the message starts with the path.</exception>
    public static RgbImage Decode(string path, DecodeOptions? options = null)
    {
        options ??= DecodeOptions.Default;
        return ReadFile(path, options, data => Decode(data, options));
    }

    /// <summary>
    /// Reads an image file (after <see cref="CheckFile"/>) and hands its bytes to <paramref name="use"/>; an
    /// <see cref="InvalidImageException"/> from it names the file.
    /// </summary>
    internal static T ReadFile<T>(string path, DecodeOptions options, Func<byte[], T> use)
    {
        var data = CheckFile(path, options) > 0 ? File.ReadAllBytes(path)
            : ReadUnsizedAsync(path, options, CancellationToken.None, synchronous: true).GetAwaiter().GetResult();
        return Named(path, () => use(data));
    }

    /// <inheritdoc cref="ReadFile{T}(string, DecodeOptions, Func{byte[], T})"/>
    internal static void ReadFile(string path, DecodeOptions options, Action<byte[]> use) =>
        ReadFile(path, options, data =>
        {
            use(data);
            return true;
        });

    /// <summary>Reads an image file asynchronously (after <see cref="CheckFile"/>), then hands its bytes to <paramref name="use"/>.</summary>
    internal static async Task<T> ReadFileAsync<T>(string path, DecodeOptions options, Func<byte[], T> use, CancellationToken cancellationToken)
    {
        var data = CheckFile(path, options) > 0 ? await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false)
            : await ReadUnsizedAsync(path, options, cancellationToken, synchronous: false).ConfigureAwait(false);
        return Named(path, () => use(data));
    }

    /// <summary>
    /// A file that gives no length (a device such as /dev/zero, a pipe, most of /proc), read as a stream and refused past
    /// <see cref="DecodeOptions.MaxFileBytes"/>: read to its end as File.ReadAllBytes does, /dev/zero fills memory until the
    /// process dies. Synchronous reads complete the task before it returns.
    /// </summary>
    private static async Task<byte[]> ReadUnsizedAsync(string path, DecodeOptions options, CancellationToken cancellationToken, bool synchronous)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0, useAsync: !synchronous);
        try
        {
            return await ReadAllAsync(file, options, cancellationToken, synchronous).ConfigureAwait(false);
        }
        catch (InvalidImageException e)
        {
            throw new InvalidImageException($"{path}: {e.Message}", e);
        }
        finally
        {
            file.Dispose();
        }
    }

    /// <summary>Reads the file asynchronously, then decodes it (on the calling thread).</summary>
    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image; the message starts with the path.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired while reading.</exception>
    public static Task<RgbImage> DecodeAsync(string path, DecodeOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= DecodeOptions.Default;
        return ReadFileAsync(path, options, data => Decode(data, options), cancellationToken);
    }

    /// <summary>The format of a file, from its first bytes.</summary>
    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    public static ImageFormat SniffFile(string path)
    {
        CheckFile(path, DecodeOptions.Default with { MaxFileBytes = long.MaxValue });
        using var file = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4096];
        return Sniff(head[..file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)]);
    }

    /// <summary>
    /// The one check every path goes through: a missing file and a directory are the same <see cref="FileNotFoundException"/>
    /// (not .NET's DirectoryNotFoundException or UnauthorizedAccessException), with a message that says which.
    /// </summary>
    /// <returns>The file's length as the file system gives it (0 for a device or a pipe, whatever they hold).</returns>
    internal static long CheckFile(string path, DecodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException(Directory.Exists(path)
                ? $"{path} is a directory, not an image file (give the image files in it, e.g. {Path.Combine(path, "*.jpg")})"
                : $"{path}: no such file", path);
        var length = new FileInfo(path).Length;
        if (length > options.MaxFileBytes)
            throw new InvalidImageException($"{path}: {length} bytes exceeds DecodeOptions.MaxFileBytes");
        return length;
    }

    private static T Named<T>(string path, Func<T> decode)
    {
        try
        {
            return decode();
        }
        catch (InvalidImageException e)
        {
            throw new InvalidImageException($"{path}: {e.Message}", e);
        }
    }

    private static InvalidImageException Unsupported(ImageFormat format, byte[] data, DecodeOptions options)
    {
        if (format == ImageFormat.Unknown)
            return new InvalidImageException(
                $"unknown image format (first bytes {Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)))}); supported: {ImageFormats.BuiltIn}");
        var tried = options.ExternalDecoders.Count == 0
            ? "; decode it through ToMeEngine.SkiaSharp or ToMeEngine.ImageSharp (DecodeOptions.ExternalDecoders), or convert it"
            : $" nor by {string.Join(", ", options.ExternalDecoders.Select(d => d.Name))} here; convert it";
        return new InvalidImageException($"{format.DisplayName()} image: not read by the built-in decoders ({ImageFormats.BuiltIn}){tried}");
    }
}
