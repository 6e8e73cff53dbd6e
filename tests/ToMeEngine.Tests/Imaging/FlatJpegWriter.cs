namespace ToMe.Tests.Imaging;

/// <summary>
/// Writes baseline JPEGs made of flat 8x8 blocks (DC only, quantizer 1), enough to build the colour
/// layouts no fixture has: 4-component CMYK/YCCK with or without an Adobe marker, RGB without a
/// transform. A flat block of value v decodes to exactly v, so expected pixels follow from the values.
/// </summary>
internal static class FlatJpegWriter
{
    /// <param name="blocks">[component][block] sample values, blocks left to right in one MCU row.</param>
    /// <param name="adobeTransform">null: no APP14 marker; otherwise its transform byte.</param>
    public static byte[] Encode(byte[][] blocks, int? adobeTransform, byte[]? componentIds = null)
    {
        int n = blocks.Length, count = blocks[0].Length;
        var ids = componentIds ?? Enumerable.Range(1, n).Select(i => (byte)i).ToArray();
        var s = new MemoryStream();
        void Seg(byte marker, params byte[] body)
        {
            s.Write([0xFF, marker, (byte)((body.Length + 2) >> 8), (byte)(body.Length + 2)]);
            s.Write(body);
        }
        s.Write([0xFF, 0xD8]);
        if (adobeTransform is int t)
            Seg(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, (byte)t]);
        Seg(0xDB, [0, .. Enumerable.Repeat((byte)1, 64)]);
        var sof = new List<byte> { 8, 0, 8, (byte)(count * 8 >> 8), (byte)(count * 8), (byte)n };
        for (var c = 0; c < n; c++) sof.AddRange([ids[c], 0x11, 0]);
        Seg(0xC0, [.. sof]);
        // DC: categories 0..11 as 4-bit codes equal to the category; AC: only EOB, code "0".
        Seg(0xC4, [0x00, 0, 0, 0, 12, .. new byte[12], .. Enumerable.Range(0, 12).Select(i => (byte)i)]);
        Seg(0xC4, [0x10, 1, .. new byte[15], 0]);
        var sos = new List<byte> { (byte)n };
        for (var c = 0; c < n; c++) sos.AddRange([ids[c], 0x00]);
        sos.AddRange([0, 63, 0]);
        Seg(0xDA, [.. sos]);

        var bits = new List<bool>();
        void Put(int value, int length)
        {
            for (var i = length - 1; i >= 0; i--) bits.Add(((value >> i) & 1) != 0);
        }
        var pred = new int[n];
        for (var b = 0; b < count; b++)
            for (var c = 0; c < n; c++)
            {
                var dc = (blocks[c][b] - 128) * 8;
                var diff = dc - pred[c];
                pred[c] = dc;
                var cat = diff == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(diff));
                Put(cat, 4);
                Put(diff >= 0 ? diff : diff + (1 << cat) - 1, cat);
                Put(0, 1);
            }
        while (bits.Count % 8 != 0) bits.Add(true);
        for (var i = 0; i < bits.Count; i += 8)
        {
            var v = 0;
            for (var j = 0; j < 8; j++) v = (v << 1) | (bits[i + j] ? 1 : 0);
            s.WriteByte((byte)v);
            if (v == 0xFF) s.WriteByte(0);
        }
        s.Write([0xFF, 0xD9]);
        return s.ToArray();
    }
}
