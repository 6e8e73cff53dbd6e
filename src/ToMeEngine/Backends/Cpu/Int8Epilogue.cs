using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Where an int8 micro-kernel's [MR, 16] tile goes, and its dequantizing epilogue:
/// c = fma((float)(sum − z_r·Σq_c), s_r·s_c, bias_c), then GELU of that (fc1) or plus the old c (accumulating), all on the
/// row still in registers.
/// </summary>
/// <remarks>
/// Every step is exact or one correctly rounded float32 operation, lane by lane, so the 256-bit, 512-bit and scalar forms
/// give the same floats (the vector GELUs agree lane for lane too; only the scalar GELU differs, and it runs only where no
/// vectors do).
/// </remarks>
internal unsafe struct Int8Tile
{
    private const int Nr = Int8Weight.PanelWidth;

    public float* C;          // [MR, 16] with row stride Ldc: the output, or a scratch tile at the edges
    public int Ldc;
    public float* RowScale;   // [MR] the activations' scales and zero points from the tile's first row on
    public int* RowZero;
    public float* ColScale;   // [16] the weight's column scales, Σq and bias (zeros for none) from the tile's first column on
    public int* ColSum;
    public float* Bias;
    public bool Accumulate;   // add to the old c (the residual)
    public bool Gelu;         // GELU of the result (never with Accumulate)
    public int* Raw;          // tests: store the int32 sums themselves, [MR, 16], instead

    // Row r: columns 0–7 in lo, 8–15 in hi.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Row(int r, Vector256<int> lo, Vector256<int> hi)
    {
        if (Raw != null)
        {
            Vector256.Store(lo, Raw + r * Nr);
            Vector256.Store(hi, Raw + r * Nr + 8);
            return;
        }
        var zero = Vector256.Create(RowZero[r]);
        var scale = Vector256.Create(RowScale[r]);
        float* dst = C + (long)r * Ldc;
        var vlo = Half(lo, zero, scale, 0, dst);
        var vhi = Half(hi, zero, scale, 8, dst + 8);
        if (Gelu && Vector512.IsHardwareAccelerated)
        {
            // The same 512-bit GELU as the other kernels' rows get on this machine.
            var v = VectorMath.Gelu(Vector512.Create(vlo, vhi));
            vlo = v.GetLower();
            vhi = v.GetUpper();
        }
        else if (Gelu)
        {
            vlo = VectorMath.Gelu(vlo);
            vhi = VectorMath.Gelu(vhi);
        }
        Vector256.Store(vlo, dst);
        Vector256.Store(vhi, dst + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vector256<float> Half(Vector256<int> sums, Vector256<int> zero, Vector256<float> rowScale, int col, float* dst)
    {
        var exact = sums - zero * Vector256.Load(ColSum + col);
        var v = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(exact), rowScale * Vector256.Load(ColScale + col), Vector256.Load(Bias + col));
        return Accumulate ? v + Vector256.Load(dst) : v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Row(int r, Vector512<int> sums)
    {
        if (Raw != null)
        {
            Vector512.Store(sums, Raw + r * Nr);
            return;
        }
        float* dst = C + (long)r * Ldc;
        var exact = sums - Vector512.Create(RowZero[r]) * Vector512.Load(ColSum);
        var v = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(exact), Vector512.Create(RowScale[r]) * Vector512.Load(ColScale), Vector512.Load(Bias));
        if (Accumulate)
            v += Vector512.Load(dst);
        if (Gelu)
            v = VectorMath.Gelu(v);
        Vector512.Store(v, dst);
    }

    // sums: [16] in memory (the scalar kernel).
    public void Row(int r, int* sums)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Row(r, Vector512.Load(sums));
            return;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            Row(r, Vector256.Load(sums), Vector256.Load(sums + 8));
            return;
        }
        if (Raw != null)
        {
            new ReadOnlySpan<int>(sums, Nr).CopyTo(new Span<int>(Raw + r * Nr, Nr));
            return;
        }
        float* dst = C + (long)r * Ldc;
        for (int j = 0; j < Nr; j++)
        {
            float v = MathF.FusedMultiplyAdd(sums[j] - RowZero[r] * ColSum[j], RowScale[r] * ColScale[j], Bias[j]);
            dst[j] = Accumulate ? dst[j] + v : Gelu ? VectorMath.Gelu(v) : v;
        }
    }
}
