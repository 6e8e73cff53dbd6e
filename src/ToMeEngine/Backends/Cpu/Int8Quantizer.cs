using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Dynamic per-row quantization of activations to asymmetric uint8 for <see cref="Int8Gemm"/>:
/// q = clamp(round(x · (1/scale)) + zero, 0, 255), the range [min(0, min x), max(0, max x)] spread over 256 levels.
/// </summary>
/// <remarks>
/// Every form gives the same levels: min and max are exact whatever the order, x·(1/scale) is one float multiply, and the
/// conversions round half to even (VCVTPS2DQ under the default MXCSR, MathF.Round in the scalar tail). On wide rows
/// (fc2's K = 4·C) this pass costs a noticeable share of a small-N GEMM, hence the AVX-512 form: convert, add, clamp at 0
/// and one saturating narrow per 16 values.
/// </remarks>
internal static unsafe class Int8Quantizer
{
    /// <summary>Scale and zero point of a row: (1, 0) for an all-zero row, NaN scale when the row holds NaN or ±∞ (outputs NaN).</summary>
    [MethodImpl(Jit.Hot)]
    public static (float Scale, int Zero) Range(ReadOnlySpan<float> row)
    {
        float min = 0f, max = 0f, probe = 0f;
        int i = 0;
        fixed (float* x = row)
        {
            if (Vector512.IsHardwareAccelerated && row.Length >= 16)
            {
                // The native min/max drop NaNs; x·0 accumulated in `nonFinite` turns NaN for NaN or ±∞ instead.
                var vmin = Vector512<float>.Zero;
                var vmax = Vector512<float>.Zero;
                var nonFinite = Vector512<float>.Zero;
                for (; i + 16 <= row.Length; i += 16)
                {
                    var v = Vector512.Load(x + i);
                    vmin = Vector512.MinNative(vmin, v);
                    vmax = Vector512.MaxNative(vmax, v);
                    nonFinite = Vector512.FusedMultiplyAdd(v, Vector512<float>.Zero, nonFinite);
                }
                var min8 = Vector256.MinNative(vmin.GetLower(), vmin.GetUpper());
                var max8 = Vector256.MaxNative(vmax.GetLower(), vmax.GetUpper());
                var min4 = Vector128.MinNative(min8.GetLower(), min8.GetUpper());
                var max4 = Vector128.MaxNative(max8.GetLower(), max8.GetUpper());
                min = MathF.Min(MathF.Min(min4[0], min4[1]), MathF.Min(min4[2], min4[3]));
                max = MathF.Max(MathF.Max(max4[0], max4[1]), MathF.Max(max4[2], max4[3]));
                probe = Vector512.Sum(nonFinite);
            }
            else if (Vector256.IsHardwareAccelerated && row.Length >= 8)
            {
                var vmin = Vector256<float>.Zero;
                var vmax = Vector256<float>.Zero;
                var nonFinite = Vector256<float>.Zero;
                for (; i + 8 <= row.Length; i += 8)
                {
                    var v = Vector256.Load(x + i);
                    vmin = Vector256.MinNative(vmin, v);
                    vmax = Vector256.MaxNative(vmax, v);
                    nonFinite = Vector256.FusedMultiplyAdd(v, Vector256<float>.Zero, nonFinite);
                }
                for (int j = 0; j < 8; j++)
                {
                    min = MathF.Min(min, vmin[j]);
                    max = MathF.Max(max, vmax[j]);
                }
                probe = Vector256.Sum(nonFinite);
            }
        }
        for (; i < row.Length; i++)
        {
            min = MathF.Min(min, row[i]);
            max = MathF.Max(max, row[i]);
        }
        float range = max - min;
        if (!float.IsFinite(range) || float.IsNaN(probe))
            return (float.NaN, 0);
        if (range < 1e-30f)
            return (1f, 0); // zeros (or values too small to matter): every level is 0
        float scale = range / 255f;
        return (scale, Math.Clamp((int)MathF.Round(-min / scale), 0, 255));
    }

    /// <summary>dst[0..K) = the row's levels, dst[K..) = 0 (padding the kernels multiply by zero weights).</summary>
    [MethodImpl(Jit.Hot)]
    public static void Quantize(ReadOnlySpan<float> row, float scale, int zero, Span<byte> dst)
    {
        float inv = 1f / scale;
        int i = 0;
        fixed (float* x = row)
        fixed (byte* d = dst)
        {
            if (Avx512F.IsSupported)
            {
                for (; i + 16 <= row.Length; i += 16)
                    Avx512F.ConvertToVector128ByteWithSaturation(Level512(x + i, inv, zero).AsUInt32()).Store(d + i);
            }
            else if (Avx2.IsSupported)
            {
                for (; i + 16 <= row.Length; i += 16)
                {
                    var words = Avx2.PackSignedSaturate(Level256(x + i, inv, zero), Level256(x + i + 8, inv, zero));
                    // Packing works within 128-bit halves: [0-3 8-11 | 4-7 12-15] → restore the order, then to bytes.
                    words = Avx2.Permute4x64(words.AsInt64(), 0b11_01_10_00).AsInt16();
                    Sse2.PackUnsignedSaturate(words.GetLower(), words.GetUpper()).Store(d + i);
                }
            }
        }
        for (; i < row.Length; i++)
            dst[i] = (byte)Level(row[i], inv, zero);
        dst[row.Length..].Clear();
    }

    /// <summary>The same levels as int16, for the VPMADDWD kernels.</summary>
    [MethodImpl(Jit.Hot)]
    public static void Quantize(ReadOnlySpan<float> row, float scale, int zero, Span<short> dst)
    {
        float inv = 1f / scale;
        int i = 0;
        fixed (float* x = row)
        fixed (short* d = dst)
        {
            if (Avx512F.IsSupported)
            {
                for (; i + 16 <= row.Length; i += 16)
                    Avx512F.ConvertToVector256Int16WithSaturation(Level512(x + i, inv, zero)).Store(d + i);
            }
            else if (Avx2.IsSupported)
            {
                for (; i + 16 <= row.Length; i += 16)
                {
                    var words = Avx2.PackSignedSaturate(Level256(x + i, inv, zero), Level256(x + i + 8, inv, zero));
                    Avx2.Permute4x64(words.AsInt64(), 0b11_01_10_00).AsInt16().Store(d + i);
                }
            }
        }
        for (; i < row.Length; i++)
            dst[i] = (short)Level(row[i], inv, zero);
        dst[row.Length..].Clear();
    }

    private static int Level(float x, float inv, int zero) => Math.Clamp((int)MathF.Round(x * inv) + zero, 0, 255);

    // Clamped to [0, 255] (rounding at the ends of the range can step one level outside), so the narrows that follow
    // never saturate.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Level512(float* x, float inv, int zero)
    {
        var q = Avx512F.ConvertToVector512Int32(Vector512.Load(x) * Vector512.Create(inv)) + Vector512.Create(zero);
        return Vector512.Min(Vector512.Max(q, Vector512<int>.Zero), Vector512.Create(255));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Level256(float* x, float inv, int zero)
    {
        var q = Avx.ConvertToVector256Int32(Vector256.Load(x) * Vector256.Create(inv)) + Vector256.Create(zero);
        return Vector256.Min(Vector256.Max(q, Vector256<int>.Zero), Vector256.Create(255));
    }
}
