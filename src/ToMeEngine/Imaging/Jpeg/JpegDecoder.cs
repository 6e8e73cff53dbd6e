using System.Buffers;

namespace ToMe.Imaging.Jpeg;

/// <summary>One colour component of the frame and its decoded sample plane.</summary>
internal sealed class JpegComponent
{
    public int Id, H, V, Tq;
    public int BlocksW, BlocksH;          // allocated, padded to whole MCUs
    public int CompBlocksW, CompBlocksH;  // blocks that hold picture data (non-interleaved scans cover these)
    public int DownW, DownH;              // libjpeg's downsampled_width/height
    public byte[]? Plane;                 // pooled, column by column: sample (x, y) at x * ColumnStride + y
    public short[]? Coefs;                // progressive only: all blocks, natural order (pooled)
    public int[]? Quant;                  // latched at the component's first scan, as libjpeg does
    public int DcPred, DcTable, AcTable;
    public bool Scanned;
    public int Bx0, Bx1, By0, By1;        // the blocks the requested region needs (inverse DCT only these)
    public int ColumnStride => BlocksH * 8;
}

/// <summary>
/// Baseline and progressive Huffman JPEG decoder reproducing libjpeg-turbo's default output (islow IDCT,
/// fancy upsampling, fixed-point YCbCr->RGB), which is what PIL returns. This file parses markers and
/// drives scans; entropy decoding, IDCT and colour conversion live beside it. Output is a
/// <see cref="PlanarImage"/> on pooled buffers; given a region, only the blocks it needs go through the
/// inverse DCT and colour conversion (entropy decoding always covers the whole file, so a damaged file
/// fails the same way whatever the region).
/// </summary>
internal sealed partial class JpegDecoder
{
    private readonly byte[] data;
    private readonly DecodeOptions options;
    private int pos;
    private const int MaxScans = 256;

    private bool frameSeen, progressive;
    private int width, height, maxH, maxV, mcusX, mcusY;
    private JpegComponent[] comps = [];
    private readonly int[]?[] quant = new int[4][];
    private readonly HuffmanTable?[] dcTables = new HuffmanTable?[4];
    private readonly HuffmanTable?[] acTables = new HuffmanTable?[4];
    private int restartInterval;
    private bool sawJfif, sawAdobe;
    private int adobeTransform;

    private readonly Func<int, int, PixelRegion>? regionOf;
    private PixelRegion region;

    private JpegDecoder(byte[] data, DecodeOptions options, Func<int, int, PixelRegion>? regionOf)
    {
        this.data = data;
        this.options = options;
        this.regionOf = regionOf;
    }

    public static RgbImage Decode(byte[] data, DecodeOptions options)
    {
        using var planar = DecodePlanar(data, options);
        return planar.ToRgb();
    }

    /// <summary>
    /// Decodes into planes. <paramref name="regionOf"/>, called with the frame's size, names the pixels the
    /// caller will read; the others are left undefined. Null means the whole picture.
    /// </summary>
    public static PlanarImage DecodePlanar(byte[] data, DecodeOptions options, Func<int, int, PixelRegion>? regionOf = null)
    {
        var decoder = new JpegDecoder(data, options, regionOf);
        try
        {
            return decoder.Run();
        }
        finally
        {
            decoder.ReleaseBuffers();
        }
    }

    internal static InvalidImageException Error(string message) => new($"JPEG: {message}");

    /// <summary>Returns every pooled buffer the output did not adopt.</summary>
    private void ReleaseBuffers()
    {
        foreach (var c in comps)
        {
            if (c is null) continue; // a frame header that failed half-way
            if (c.Plane is { } plane) ArrayPool<byte>.Shared.Return(plane);
            if (c.Coefs is { } coefs) ArrayPool<short>.Shared.Return(coefs);
            c.Plane = null;
            c.Coefs = null;
        }
        if (rowCoefs is { } row) ArrayPool<short>.Shared.Return(row);
        rowCoefs = null;
    }

    private PlanarImage Run()
    {
        if (data.Length < 4 || data[0] != 0xFF || data[1] != 0xD8)
            throw Error("missing SOI marker");
        pos = 2;
        var scans = 0;
        while (true)
        {
            var marker = NextMarker();
            switch (marker)
            {
                case 0xD9:
                    if (!frameSeen || scans == 0)
                        throw Error("EOI before any image data");
                    return Finish();
                case 0xC0 or 0xC1 or 0xC2:
                    ReadFrame(marker == 0xC2);
                    break;
                case 0xC3 or 0xC5 or 0xC6 or 0xC7 or 0xC9 or 0xCA or 0xCB or 0xCD or 0xCE or 0xCF:
                    throw Error($"unsupported coding process (SOF{marker - 0xC0}: lossless, hierarchical or arithmetic)");
                case 0xC4: ReadHuffmanTables(); break;
                case 0xDB: ReadQuantTables(); break;
                case 0xDD:
                    {
                        var len = SegmentLength();
                        if (len < 4) throw Error("DRI segment too short");
                        restartInterval = (data[pos] << 8) | data[pos + 1];
                        pos += len - 2;
                        break;
                    }
                case 0xDA:
                    if (!frameSeen) throw Error("SOS before SOF");
                    // Every scan walks the whole frame, so a flood of tiny scans could cost minutes;
                    // real files have at most a few dozen (libjpeg-turbo's fuzzing limit is 500).
                    if (++scans > MaxScans) throw Error($"more than {MaxScans} scans");
                    ReadScan();
                    break;
                case 0xD8: throw Error("unexpected second SOI");
                case 0xDC: throw Error("DNL marker (height defined after the scan) is not supported");
                case >= 0xD0 and <= 0xD7 or 0x01:
                    break; // parameterless: stray RSTn or TEM
                case 0xE0:
                    {
                        var len = SegmentLength();
                        if (len >= 7 && data.AsSpan(pos, 5).SequenceEqual("JFIF\0"u8)) sawJfif = true;
                        pos += len - 2;
                        break;
                    }
                case 0xEE:
                    {
                        var len = SegmentLength();
                        if (len >= 14 && data.AsSpan(pos, 5).SequenceEqual("Adobe"u8))
                        {
                            sawAdobe = true;
                            adobeTransform = data[pos + 11];
                        }
                        pos += len - 2;
                        break;
                    }
                default:
                    {
                        var skip = SegmentLength();
                        pos += skip - 2;
                    }
                    break;
            }
        }
    }

    /// <summary>
    /// Finds the next marker, skipping garbage and 0xFF fill bytes as libjpeg does (after a scan the
    /// reader may stop a few bytes short of the marker).
    /// </summary>
    private int NextMarker()
    {
        while (true)
        {
            while (pos < data.Length && data[pos] != 0xFF) pos++;
            while (pos < data.Length && data[pos] == 0xFF) pos++;
            if (pos >= data.Length)
                throw Error("truncated file (end of data before EOI)");
            var m = data[pos++];
            if (m != 0) return m;
        }
    }

    /// <summary>Reads a segment length at <see cref="pos"/>, checks it fits, and leaves pos after it.</summary>
    private int SegmentLength()
    {
        if (pos + 2 > data.Length) throw Error("truncated marker segment");
        var len = (data[pos] << 8) | data[pos + 1];
        if (len < 2) throw Error($"invalid segment length {len}");
        if (pos + len > data.Length) throw Error("truncated marker segment");
        pos += 2;
        return len;
    }

    private void ReadQuantTables()
    {
        var segLen = SegmentLength();
        var end = pos - 2 + segLen;
        while (pos < end)
        {
            int pq = data[pos] >> 4, tq = data[pos] & 15;
            pos++;
            if (tq > 3) throw Error($"quantization table id {tq} out of range");
            if (pq > 1) throw Error($"invalid quantization table precision {pq}");
            var n = pq == 0 ? 64 : 128;
            if (pos + n > end) throw Error("DQT segment too short");
            var table = new int[64];
            for (var k = 0; k < 64; k++)
                table[ZigZag[k]] = pq == 0 ? data[pos + k] : (data[pos + 2 * k] << 8) | data[pos + 2 * k + 1];
            quant[tq] = table;
            pos += n;
        }
        pos = end;
    }

    private void ReadHuffmanTables()
    {
        var segLen = SegmentLength();
        var end = pos - 2 + segLen;
        while (pos < end)
        {
            if (pos + 17 > end) throw Error("DHT segment too short");
            int tc = data[pos] >> 4, th = data[pos] & 15;
            if (tc > 1 || th > 3) throw Error($"invalid Huffman table class/id {tc}/{th}");
            var counts = data.AsSpan(pos + 1, 16);
            var total = 0;
            foreach (var c in counts) total += c;
            if (total > 256 || pos + 17 + total > end) throw Error("DHT segment inconsistent with its code counts");
            var table = new HuffmanTable(counts, data.AsSpan(pos + 17, total), isAc: tc == 1);
            (tc == 0 ? dcTables : acTables)[th] = table;
            pos += 17 + total;
        }
        pos = end;
    }

    private void ReadFrame(bool isProgressive)
    {
        if (frameSeen) throw Error("more than one frame (SOF) marker");
        var len = SegmentLength();
        if (len < 8) throw Error("SOF segment too short");
        int precision = data[pos];
        height = (data[pos + 1] << 8) | data[pos + 2];
        width = (data[pos + 3] << 8) | data[pos + 4];
        int n = data[pos + 5];
        if (precision != 8)
            throw Error($"{precision}-bit sample precision is not supported (8-bit only)");
        if (height == 0) throw Error("height 0 (DNL-defined height) is not supported");
        if (width == 0) throw Error("width 0");
        if (n is not (1 or 3 or 4)) throw Error($"{n} components are not supported (1, 3 or 4)");
        if (len != 8 + 3 * n) throw Error("SOF length does not match its component count");
        options.CheckSize("JPEG", width, height);
        comps = new JpegComponent[n];
        for (var i = 0; i < n; i++)
        {
            var p = pos + 6 + 3 * i;
            var c = new JpegComponent { Id = data[p], H = data[p + 1] >> 4, V = data[p + 1] & 15, Tq = data[p + 2] };
            if (c.H is < 1 or > 4 || c.V is < 1 or > 4) throw Error($"invalid sampling factors {c.H}x{c.V}");
            if (c.Tq > 3) throw Error($"quantization table id {c.Tq} out of range");
            for (var j = 0; j < i; j++)
                if (comps[j].Id == c.Id) throw Error($"duplicate component id {c.Id}");
            comps[i] = c;
        }
        pos += len - 2;
        maxH = comps.Max(c => c.H);
        maxV = comps.Max(c => c.V);
        mcusX = (width + 8 * maxH - 1) / (8 * maxH);
        mcusY = (height + 8 * maxV - 1) / (8 * maxV);
        long codedBlocks = 0;
        foreach (var c in comps)
        {
            if (maxH % c.H != 0 || maxV % c.V != 0)
                throw Error($"fractional sampling factors ({c.H}x{c.V} against {maxH}x{maxV}) are not supported");
            c.DownW = (int)(((long)width * c.H + maxH - 1) / maxH);
            c.DownH = (int)(((long)height * c.V + maxV - 1) / maxV);
            c.CompBlocksW = (c.DownW + 7) / 8;
            c.CompBlocksH = (c.DownH + 7) / 8;
            codedBlocks += (long)c.CompBlocksW * c.CompBlocksH;
        }
        // Every block's DC coefficient costs at least one bit (sequential scans and the first progressive DC scan
        // code every block). A file shorter than that forged or lost its size: decoding it would fill the whole
        // declared frame from nothing, seconds of work and a gigabyte of planes for a few bytes of input.
        if (codedBlocks > (long)data.Length * 8)
            throw Error($"{width}x{height} needs at least {codedBlocks / 8} bytes of coded data, the file has {data.Length} (truncated or forged header)");
        region = new PixelRegion(0, 0, width, height);
        if (regionOf?.Invoke(width, height) is { } r && r.X0 < r.X1 && r.Y0 < r.Y1)
            region = new PixelRegion(Math.Max(r.X0, 0), Math.Max(r.Y0, 0), Math.Min(r.X1, width), Math.Min(r.Y1, height));
        foreach (var c in comps)
        {
            c.BlocksW = mcusX * c.H;
            c.BlocksH = mcusY * c.V;
            c.Plane = PlanarImage.RentPlane(c.BlocksW * 8, c.ColumnStride);
            if (isProgressive)
            {
                var count = checked(c.BlocksW * c.BlocksH * 64);
                c.Coefs = ArrayPool<short>.Shared.Rent(count);
                Array.Clear(c.Coefs, 0, count);
            }
            // Component samples the region needs: upsampling reads one neighbour on each side.
            int hx = maxH / c.H, vx = maxV / c.V;
            int cx0 = Math.Max(region.X0 / hx - 1, 0), cx1 = Math.Min((region.X1 - 1) / hx + 2, c.DownW);
            int cy0 = Math.Max(region.Y0 / vx - 1, 0), cy1 = Math.Min((region.Y1 - 1) / vx + 2, c.DownH);
            (c.Bx0, c.Bx1, c.By0, c.By1) = (cx0 / 8, (cx1 + 7) / 8, cy0 / 8, (cy1 + 7) / 8);
        }
        progressive = isProgressive;
        frameSeen = true;
    }

    private void ReadScan()
    {
        var len = SegmentLength();
        if (len < 6) throw Error("SOS segment too short");
        int ns = data[pos];
        if (ns is < 1 or > 4 || len != 6 + 2 * ns) throw Error($"invalid scan component count {ns}");
        var scanComps = new JpegComponent[ns];
        for (var i = 0; i < ns; i++)
        {
            int id = data[pos + 1 + 2 * i], tables = data[pos + 2 + 2 * i];
            var c = comps.FirstOrDefault(x => x.Id == id) ?? throw Error($"scan refers to unknown component {id}");
            if (Array.IndexOf(scanComps, c) >= 0) throw Error($"component {id} twice in one scan");
            c.DcTable = tables >> 4;
            c.AcTable = tables & 15;
            if (c.DcTable > 3 || c.AcTable > 3) throw Error("Huffman table id out of range");
            scanComps[i] = c;
        }
        var p = pos + 1 + 2 * ns;
        int ss = data[p], se = data[p + 1], ah = data[p + 2] >> 4, al = data[p + 2] & 15;
        pos += len - 2;

        if (progressive)
        {
            if (ss == 0 ? se != 0 : se < ss || se > 63 || ns != 1)
                throw Error($"invalid progressive spectral selection {ss}..{se} over {ns} components");
            if (ah > 13 || al > 13) throw Error("invalid successive approximation");
        }
        else if (ss != 0 || se != 63 || ah != 0 || al != 0)
            throw Error("invalid baseline scan parameters");
        if (ns > 1)
        {
            var blocks = scanComps.Sum(c => c.H * c.V);
            if (blocks > 10) throw Error("more than 10 blocks per MCU");
        }

        foreach (var c in scanComps)
        {
            c.Scanned = true;
            c.Quant ??= (int[]?)quant[c.Tq]?.Clone() ?? throw Error($"missing quantization table {c.Tq}");
            var needDc = !progressive || (ss == 0 && ah == 0);
            var needAc = !progressive || ss > 0;
            if (needDc && dcTables[c.DcTable] is null) throw Error($"missing DC Huffman table {c.DcTable}");
            if (needAc && acTables[c.AcTable] is null) throw Error($"missing AC Huffman table {c.AcTable}");
            c.DcPred = 0;
        }
        DecodeScan(scanComps, ss, se, ah, al);
    }
}
