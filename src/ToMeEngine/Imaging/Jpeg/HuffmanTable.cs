namespace ToMe.Imaging.Jpeg;

/// <summary>
/// A JPEG Huffman table: a 9-bit lookahead table for the common short codes and the canonical
/// maxcode/valptr arrays (ITU T.81 F.2.2.3) for the rest.
/// </summary>
internal sealed class HuffmanTable
{
    public const int LookBits = 9;

    // (length << 8) | symbol, or 0 where the code is longer than LookBits.
    public readonly ushort[] Lookup = new ushort[1 << LookBits];
    public readonly int[] MaxCode = new int[18];
    public readonly int[] ValOffset = new int[17];
    public readonly byte[] Values;

    public HuffmanTable(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> values)
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
                if (len <= LookBits)
                {
                    for (var i = 0; i < n; i++)
                    {
                        var c = code + i;
                        var shift = LookBits - len;
                        var entry = (ushort)((len << 8) | Values[k + i]);
                        for (var j = 0; j < 1 << shift; j++)
                            Lookup[(c << shift) | j] = entry;
                    }
                }
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
}
