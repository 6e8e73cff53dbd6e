namespace ToMe.Imaging;

/// <summary>An 8-bit RGB picture, rows top to bottom, pixels interleaved R,G,B with no row padding.</summary>
public sealed class RgbImage
{
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

    public int Width { get; }
    public int Height { get; }

    /// <summary>Interleaved RGB8, <c>Width * 3</c> bytes per row.</summary>
    public byte[] Pixels { get; }

    public int Stride => Width * 3;

    public override string ToString() => $"RgbImage {Width}x{Height}";
}
