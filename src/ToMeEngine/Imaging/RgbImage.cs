namespace ToMe.Imaging;

/// <summary>An 8-bit RGB picture, rows top to bottom, pixels interleaved R,G,B with no row padding.</summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="pixels"/> (not copied): <c>width * height * 3</c> bytes, R,G,B interleaved, rows top to bottom.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    /// <exception cref="ArgumentException"><paramref name="pixels"/> does not hold exactly <c>width * height * 3</c> bytes.</exception>
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.LongLength != (long)width * height * 3)
            throw new ArgumentException($"expected {(long)width * height * 3} bytes for {width}x{height} RGB, got {pixels.LongLength}", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Allocates a black picture.</summary>
    public RgbImage(int width, int height) : this(width, height, new byte[Size(width, height)]) { }

    // The sizes are checked before the array is allocated, so a negative one is an ArgumentOutOfRangeException, not an overflow.
    private static int Size(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        long bytes = (long)width * height * 3;
        return bytes <= Array.MaxLength ? (int)bytes
            : throw new ArgumentOutOfRangeException(nameof(width), $"{width}x{height} RGB needs {bytes} bytes, more than an array holds");
    }

    /// <summary>Width in pixels (at least 1).</summary>
    public int Width { get; }

    /// <summary>Height in pixels (at least 1).</summary>
    public int Height { get; }

    /// <summary>Interleaved RGB8, <c>Width * 3</c> bytes per row.</summary>
    public byte[] Pixels { get; }

    /// <summary>Bytes per row: <c>Width * 3</c>.</summary>
    public int Stride => Width * 3;

    /// <summary>"RgbImage WxH", for messages.</summary>
    public override string ToString() => $"RgbImage {Width}x{Height}";
}
