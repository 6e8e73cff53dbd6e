namespace ToMe.Imaging;

/// <summary>
/// Binary PGM (P5) and PPM (P6), maxval 1..65535. Samples are scaled as PIL 9's PPM decoder does for
/// maxval != 255: <c>round(value / maxval * 255)</c> in double precision, ties to even (Python's round).
/// </summary>
internal static class PnmDecoder
{
    private static InvalidImageException Error(string m) => new($"PNM: {m}");

    public static RgbImage Decode(byte[] data, DecodeOptions options)
    {
        if (data[1] is not ((byte)'5' or (byte)'6'))
            throw Error($"P{(char)data[1]} (plain-text, bitmap or PAM) is not supported; binary P5/P6 only");
        var color = data[1] == (byte)'6';
        var pos = 2;
        var width = ReadNumber(data, ref pos);
        var height = ReadNumber(data, ref pos);
        var maxval = ReadNumber(data, ref pos);
        if (maxval is < 1 or > 65535) throw Error($"invalid maxval {maxval}");
        options.CheckSize("PNM", width, height);
        // Exactly one whitespace byte separates the header from the samples.
        if (pos >= data.Length || !IsSpace(data[pos])) throw Error("missing whitespace after header");
        pos++;
        int w = (int)width, h = (int)height, channels = color ? 3 : 1, bytesPer = maxval > 255 ? 2 : 1;
        var need = (long)w * h * channels * bytesPer;
        if (pos + need > data.Length) throw Error($"truncated pixel data (need {need} bytes, have {data.Length - pos})");

        var lut = new byte[maxval + 1];
        for (var v = 0; v <= maxval; v++)
            lut[v] = maxval == 255 ? (byte)v : (byte)Math.Min(255, Math.Round(v / (double)maxval * 255.0));

        var image = new RgbImage(w, h);
        var px = image.Pixels;
        long n = (long)w * h;
        for (long i = 0; i < n; i++)
        {
            for (var c = 0; c < channels; c++)
            {
                int v = bytesPer == 1 ? data[pos] : (data[pos] << 8) | data[pos + 1];
                pos += bytesPer;
                if (v > maxval) v = (int)maxval;
                px[i * 3 + c] = lut[v];
            }
            if (!color) px[i * 3 + 1] = px[i * 3 + 2] = px[i * 3];
        }
        return image;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0B or 0x0C;

    private static long ReadNumber(byte[] d, ref int pos)
    {
        while (true)
        {
            while (pos < d.Length && IsSpace(d[pos])) pos++;
            if (pos < d.Length && d[pos] == (byte)'#')
            {
                while (pos < d.Length && d[pos] != (byte)'\n' && d[pos] != (byte)'\r') pos++;
                continue;
            }
            break;
        }
        long v = 0;
        var digits = 0;
        while (pos < d.Length && d[pos] is >= (byte)'0' and <= (byte)'9')
        {
            v = v * 10 + (d[pos++] - '0');
            if (++digits > 9) throw Error("header number too large");
        }
        if (digits == 0) throw Error("truncated or malformed header");
        return v;
    }
}
