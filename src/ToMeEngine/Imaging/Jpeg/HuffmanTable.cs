namespace ToMe.Imaging.Jpeg;

/// <summary>
/// A JPEG Huffman table: a 9-bit lookahead table for the common short codes, the canonical
/// maxcode/valptr arrays (ITU T.81 F.2.2.3) for the rest, and a 10-bit table that decodes a whole
/// coefficient (code, run and the extra bits of its value) in one look-up where they fit.
/// </summary>
internal sealed class HuffmanTable
{
    public const int LookBits = 9;
    public const int FastBits = 10;

    // (length << 8) | symbol, or 0 where the code is longer than LookBits.
    public readonly ushort[] Lookup = new ushort[1 << LookBits];

    // (value << 16) | (run << 8) | bits consumed, or 0 where code and value need more than FastBits.
    // DC tables: any difference. AC tables (sequential scans): a coefficient with the zeros before it, ZRL
    // as a run of 15 and a zero, end of block as a run of EndOfBlock.
    public const int EndOfBlock = 64;
    public readonly int[] Fast = new int[1 << FastBits];
    public readonly int[] MaxCode = new int[18];
    public readonly int[] ValOffset = new int[17];
    public readonly byte[] Values;

    public HuffmanTable(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> values, bool isAc)
    {
        Values = values.ToArray();
        var code = 0;
        var k = 0;
        for (var len = 1; len <= 16; len++)
        {
            int n = counts[len - 1];
            ValOffset[len] = k - code;
            if (n > 0)
            {
                // A canonical code of this length must fit in len bits; otherwise the table is corrupt.
                if (code + n > 1 << len)
                    throw JpegDecoder.Error("invalid Huffman table (code space overflow)");
                for (var i = 0; i < n && len <= FastBits; i++)
                    AddShortCode(code + i, len, Values[k + i], isAc);
                code += n;
                k += n;
                MaxCode[len] = code - 1;
            }
            else
            {
                MaxCode[len] = -1;
            }
            code <<= 1;
        }
        MaxCode[17] = int.MaxValue;
    }

    private void AddShortCode(int c, int len, byte symbol, bool isAc)
    {
        if (len <= LookBits)
        {
            var shift = LookBits - len;
            var entry = (ushort)((len << 8) | symbol);
            for (var j = 0; j < 1 << shift; j++)
                Lookup[(c << shift) | j] = entry;
        }
        int run = isAc ? symbol >> 4 : 0, size = isAc ? symbol & 15 : symbol;
        // A sequential scan's end of block (any run below 15 with no value) jumps past the last coefficient;
        // ZRL is a run of 15 and a zero.
        if (isAc && size == 0 && run != 15)
            run = EndOfBlock;
        if (len + size > FastBits)
            return;
        var free = FastBits - len;
        for (var j = 0; j < 1 << free; j++)
        {
            // The value's bits follow the code: the top `size` of the remaining ones.
            var raw = size == 0 ? 0 : j >> (free - size);
            var value = size == 0 ? 0 : raw < 1 << (size - 1) ? raw - (1 << size) + 1 : raw;
            Fast[(c << free) | j] = (value << 16) | (run << 8) | (len + size);
        }
    }
}
