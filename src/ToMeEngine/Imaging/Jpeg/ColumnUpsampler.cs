using System.Buffers;
using System.Runtime.InteropServices;

namespace ToMe.Imaging.Jpeg;

/// <summary>
/// One component brought to full resolution a column at a time, as libjpeg-turbo's jdsample.c does it by
/// rows: fancy (triangle) upsampling for h2v1, h1v2 and h2v2 (h2 only when the component is wider than 2
/// samples), replication otherwise. Planes are column-major, so the horizontal neighbours of a sample are
/// whole columns and the vertical ones are adjacent bytes. Column and row indices are output pixels.
/// </summary>
internal sealed unsafe class ColumnUpsampler : IDisposable
{
    private enum Mode { Identity, H2V1, H1V2, H2V2, Replicate }

    private readonly Mode mode;
    private readonly int hx, vx, dw, dh, planeStride;
    private readonly byte* plane, column;
    private readonly ushort* sumsBase;
    private GCHandle planePin, scratchPin, sumsPin;
    private readonly byte[]? scratch;
    private readonly ushort[]? sums;     // h2v2: vertical sums of three input columns
    private readonly int[] sumColumn = [-1, -1, -1];
    private readonly int sumsStride;
    private int sumsY0 = -1, sumsY1 = -1;

    public ColumnUpsampler(JpegComponent c, int hx, int vx, int stride, byte[] planeArray)
    {
        (this.hx, this.vx, dw, dh, planeStride) = (hx, vx, c.DownW, c.DownH, c.ColumnStride);
        mode = (hx, vx) switch
        {
            (1, 1) => Mode.Identity,
            (2, 1) when dw > 2 => Mode.H2V1,
            (1, 2) => Mode.H1V2,
            (2, 2) when dw > 2 => Mode.H2V2,
            _ => Mode.Replicate,
        };
        planePin = GCHandle.Alloc(planeArray, GCHandleType.Pinned);
        plane = (byte*)planePin.AddrOfPinnedObject();
        if (mode == Mode.Identity) return;
        scratch = ArrayPool<byte>.Shared.Rent(stride + PlanarImage.Slack);
        scratchPin = GCHandle.Alloc(scratch, GCHandleType.Pinned);
        column = (byte*)scratchPin.AddrOfPinnedObject();
        if (mode != Mode.H2V2) return;
        sumsStride = stride;
        sums = ArrayPool<ushort>.Shared.Rent(3 * stride);
        sumsPin = GCHandle.Alloc(sums, GCHandleType.Pinned);
        sumsBase = (ushort*)sumsPin.AddrOfPinnedObject();
    }

    /// <summary>
    /// The samples of output column x, rows y0..y1-1 (at index y of the returned pointer). May point into
    /// the plane itself or into a scratch column that the next call overwrites.
    /// </summary>
    public byte* Column(int x, int y0, int y1)
    {
        var o = column;
        switch (mode)
        {
            case Mode.Identity:
                return plane + (long)x * planeStride;
            case Mode.H2V1:
                {
                    // out[2i] = (3 s[i] + s[i-1] + 1) >> 2, out[2i+1] = (3 s[i] + s[i+1] + 2) >> 2; edges copy.
                    int i = x >> 1, odd = x & 1;
                    if (odd == 0 ? i == 0 : i == dw - 1)
                        return plane + (long)i * planeStride;
                    byte* s = plane + (long)i * planeStride, n = s + (odd == 0 ? -planeStride : planeStride);
                    var bias = 1 + odd;
                    for (var y = y0; y < y1; y++)
                        o[y] = (byte)((s[y] * 3 + n[y] + bias) >> 2);
                    return o;
                }
            case Mode.H1V2:
                {
                    var s = plane + (long)x * planeStride;
                    for (var y = y0; y < y1; y++)
                    {
                        int r = y >> 1, near = (y & 1) == 0 ? Math.Max(r - 1, 0) : Math.Min(r + 1, dh - 1);
                        o[y] = (byte)((s[r] * 3 + s[near] + 1 + (y & 1)) >> 2);
                    }
                    return o;
                }
            case Mode.H2V2:
                {
                    // Vertical sums 3 s[r] + s[near] of input columns, then across columns:
                    // out[2i] = (3 sum[i] + sum[i-1] + 8) >> 4, out[2i+1] = (3 sum[i] + sum[i+1] + 7) >> 4,
                    // and at the edges (4 sum + 8) >> 4, (4 sum + 7) >> 4.
                    int i = x >> 1, odd = x & 1;
                    var cur = Sums(i, y0, y1);
                    var edge = odd == 0 ? i == 0 : i == dw - 1;
                    var other = edge ? cur : Sums(odd == 0 ? i - 1 : i + 1, y0, y1);
                    var bias = 8 - odd;
                    for (var y = y0; y < y1; y++)
                        o[y] = (byte)((cur[y] * 3 + other[y] + bias) >> 4);
                    return o;
                }
            default:
                {
                    var s = plane + (long)(x / hx) * planeStride;
                    if (vx == 1) return s;
                    for (var y = y0; y < y1; y++)
                        o[y] = s[y / vx];
                    return o;
                }
        }
    }

    /// <summary>The h2v2 vertical sums of input column j, kept for the next two output columns that need them.</summary>
    private ushort* Sums(int j, int y0, int y1)
    {
        if (y0 != sumsY0 || y1 != sumsY1)
        {
            sumColumn.AsSpan().Fill(-1);
            (sumsY0, sumsY1) = (y0, y1);
        }
        var slot = j % 3;
        var dst = sumsBase + slot * sumsStride;
        if (sumColumn[slot] == j) return dst;
        sumColumn[slot] = j;
        var s = plane + (long)j * planeStride;
        for (var y = y0; y < y1; y++)
        {
            int r = y >> 1, near = (y & 1) == 0 ? Math.Max(r - 1, 0) : Math.Min(r + 1, dh - 1);
            dst[y] = (ushort)(s[r] * 3 + s[near]);
        }
        return dst;
    }

    public void Dispose()
    {
        if (planePin.IsAllocated) planePin.Free();
        if (scratchPin.IsAllocated) scratchPin.Free();
        if (sumsPin.IsAllocated) sumsPin.Free();
        if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
        if (sums is not null) ArrayPool<ushort>.Shared.Return(sums);
    }
}
