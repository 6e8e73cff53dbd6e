using System.Buffers;

namespace ToMe.Imaging;

/// <summary>
/// An 8-bit RGB picture as three planes stored column by column: sample (x, y) of a channel is at
/// <c>x * ColumnStride + y</c>. The JPEG decoder writes this layout without cost (its IDCT ends with
/// columns in registers), and it makes the horizontal resize pass a run over contiguous memory. The
/// planes are rented from the shared pool and returned by <see cref="Dispose"/>. A decoder that was told
/// which part of the picture is needed fills only that region; the rest of the planes is undefined.
/// </summary>
internal sealed class PlanarImage : IDisposable
{
    /// <summary>Bytes readable past the last column, so that 16-sample vector loads never need a tail case.</summary>
    public const int Slack = 64;

    private byte[]?[] planes;

    public PlanarImage(int width, int height, int columnStride, bool gray = false)
    {
        if (width <= 0 || height <= 0 || columnStride < height)
            throw new ArgumentOutOfRangeException(nameof(width), $"planar picture {width}x{height}, column stride {columnStride}");
        Width = width;
        Height = height;
        ColumnStride = columnStride;
        var first = RentPlane(width, columnStride);
        planes = gray ? [first, first, first] : [first, RentPlane(width, columnStride), RentPlane(width, columnStride)];
    }

    /// <summary>Adopts three pooled planes (the same array thrice for grayscale); they are returned on disposal.</summary>
    public PlanarImage(int width, int height, int columnStride, byte[] r, byte[] g, byte[] b)
    {
        if (width <= 0 || height <= 0 || columnStride < height || (long)width * columnStride + Slack > Math.Min(r.Length, Math.Min(g.Length, b.Length)))
            throw new ArgumentOutOfRangeException(nameof(width), $"planar picture {width}x{height}, column stride {columnStride}");
        Width = width;
        Height = height;
        ColumnStride = columnStride;
        planes = [r, g, b];
    }

    /// <summary>A pooled buffer for one plane of <paramref name="width"/> columns.</summary>
    public static byte[] RentPlane(int width, int columnStride) => ArrayPool<byte>.Shared.Rent(checked(width * columnStride + Slack));

    public int Width { get; }
    public int Height { get; }
    public int ColumnStride { get; }

    /// <summary>True when the three channels are one plane (a grayscale source).</summary>
    public bool IsGray => ReferenceEquals(planes[0], planes[1]);

    public byte[] Plane(int channel) => planes[channel] ?? throw new ObjectDisposedException(nameof(PlanarImage));

    /// <summary>Row-major interleaved RGB of the whole picture.</summary>
    public unsafe RgbImage ToRgb()
    {
        var image = new RgbImage(Width, Height);
        fixed (byte* r = Plane(0), g = Plane(1), b = Plane(2), o = image.Pixels)
        {
            for (var x = 0; x < Width; x++)
            {
                byte* pr = r + (long)x * ColumnStride, pg = g + (long)x * ColumnStride, pb = b + (long)x * ColumnStride;
                var d = o + 3 * x;
                for (var y = 0; y < Height; y++, d += 3 * Width)
                {
                    d[0] = pr[y];
                    d[1] = pg[y];
                    d[2] = pb[y];
                }
            }
        }
        return image;
    }

    /// <summary>The planar form of an interleaved picture.</summary>
    public static unsafe PlanarImage From(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var p = new PlanarImage(image.Width, image.Height, image.Height);
        int w = image.Width, h = image.Height;
        fixed (byte* r = p.Plane(0), g = p.Plane(1), b = p.Plane(2), s = image.Pixels)
        {
            for (var y = 0; y < h; y++)
            {
                var src = s + (long)y * w * 3;
                for (var x = 0; x < w; x++, src += 3)
                {
                    long i = (long)x * h + y;
                    r[i] = src[0];
                    g[i] = src[1];
                    b[i] = src[2];
                }
            }
        }
        return p;
    }

    public void Dispose()
    {
        var p = planes;
        planes = [null, null, null];
        if (p[0] is { } first) ArrayPool<byte>.Shared.Return(first);
        if (p[1] is { } second && !ReferenceEquals(second, p[0])) ArrayPool<byte>.Shared.Return(second);
        if (p[2] is { } third && !ReferenceEquals(third, p[0])) ArrayPool<byte>.Shared.Return(third);
    }
}
