namespace ToMe.Tests.Cuda;

/// <summary>fp16 and bf16 storage codes for test data (round to nearest even), and back to float.</summary>
internal static class HalfBits
{
    public static ushort ToHalf(float x) => BitConverter.HalfToUInt16Bits((Half)x);

    public static float FromHalf(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    public static ushort ToBf16(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            return 0x7fff;
        return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }

    public static float FromBf16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Codes of <paramref name="values"/> in fp16 (<paramref name="bf16"/> false) or bf16.</summary>
    public static ushort[] Encode(float[] values, bool bf16) => [.. values.Select(v => bf16 ? ToBf16(v) : ToHalf(v))];

    public static float[] Decode(ushort[] codes, bool bf16) => [.. codes.Select(c => bf16 ? FromBf16(c) : FromHalf(c))];
}
