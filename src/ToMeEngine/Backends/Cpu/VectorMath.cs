using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Float32 erf-based GELU shared by the GEMM epilogue and the row helpers.
/// </summary>
/// <remarks>
/// GELU(x) = 0.5·x·(1 + erf(x/√2)) is evaluated through Φ2(u) = 1 + erf(u) rather than erf itself, so that
/// the negative tail (1 + erf(u) = erfc(−u)) keeps full relative accuracy instead of cancelling to zero:
/// erfc(|u|) = t·exp(−u² + P(t)), t = 1/(1 + |u|/2) (Numerical Recipes' Chebyshev fit, relative error ≤ 1.2e-7 for
/// every u ≥ 0), then Φ2 = erfc(−u) for u &lt; 0 and 2 − erfc(u) otherwise. Φ2 is near 1 where |u| is small, so this
/// one branch is as accurate there as a series, and the GEMM epilogue pays for one polynomial instead of two.
/// <see cref="Erf(float)"/> itself keeps an odd Taylor series for |x| &lt; 0.75, where 1 − erfc would lose erf's
/// relative accuracy. Measured against a float64 reference: GELU within 4e-7 relative for |x| ≤ 2, growing in the far
/// negative tail with the float32 rounding of the exp argument (~3ε·u²).
/// </remarks>
internal static class VectorMath
{
    internal const float InvSqrt2 = 0.70710678118654752f;
    private const float SmallLimit = 0.75f;

    // Taylor coefficients 2/√π·(−1)ⁿ/(n!(2n+1)), n = 0..9.
    private const float T0 = 1.1283791670955126f, T1 = -0.37612638903183754f, T2 = 0.11283791670955126f;
    private const float T3 = -0.026866170645131252f, T4 = 0.005223977625442188f, T5 = -0.0008548327023450852f;
    private const float T6 = 0.00012055332981789664f, T7 = -1.492565035840625e-05f, T8 = 1.6462114365889246e-06f;
    private const float T9 = -1.6365844691234924e-07f;

    // erfc(z) ≈ t·exp(−z² + R0 + t·(R1 + t·(R2 + …))).
    internal const float R0 = -1.26551223f, R1 = 1.00002368f, R2 = 0.37409196f, R3 = 0.09678418f, R4 = -0.18628806f;
    internal const float R5 = 0.27886807f, R6 = -1.13520398f, R7 = 1.48851587f, R8 = -0.82215223f, R9 = 0.17087277f;

    // Cephes expf: exp(x) = 2ⁿ·exp(g), g = x − n·ln2 split in two parts for exactness, |g| ≤ ln2/2.
    internal const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    internal const float E0 = 1.9875691500e-4f, E1 = 1.3981999507e-3f, E2 = 8.3334519073e-3f;
    internal const float E3 = 4.1665795894e-2f, E4 = 1.6666665459e-1f, E5 = 5.0000001201e-1f;
    internal const float ExpFloor = -87.33654f; // below this e^x is not a normal float

    /// <summary>erf(x), float32.</summary>
    public static float Erf(float x)
    {
        float ax = MathF.Abs(x);
        return ax < SmallLimit ? x * OddSeries(x * x) : MathF.CopySign(1f - ErfcNonNegative(ax), x);
    }

    /// <summary>1 + erf(u): erfc(−u) for u &lt; 0, 2 − erfc(u) otherwise.</summary>
    public static float OnePlusErf(float u)
    {
        float erfc = ErfcNonNegative(MathF.Abs(u));
        return u < 0f ? erfc : 2f - erfc;
    }

    public static float Gelu(float x) => 0.5f * x * OnePlusErf(x * InvSqrt2);

    // erf(u)/u as a polynomial in z = u².
    private static float OddSeries(float z)
    {
        float p = T9;
        p = MathF.FusedMultiplyAdd(p, z, T8); p = MathF.FusedMultiplyAdd(p, z, T7);
        p = MathF.FusedMultiplyAdd(p, z, T6); p = MathF.FusedMultiplyAdd(p, z, T5);
        p = MathF.FusedMultiplyAdd(p, z, T4); p = MathF.FusedMultiplyAdd(p, z, T3);
        p = MathF.FusedMultiplyAdd(p, z, T2); p = MathF.FusedMultiplyAdd(p, z, T1);
        return MathF.FusedMultiplyAdd(p, z, T0);
    }

    // erfc(z) for z ≥ 0.
    private static float ErfcNonNegative(float z)
    {
        float t = 1f / MathF.FusedMultiplyAdd(0.5f, z, 1f);
        float r = R9;
        r = MathF.FusedMultiplyAdd(r, t, R8); r = MathF.FusedMultiplyAdd(r, t, R7);
        r = MathF.FusedMultiplyAdd(r, t, R6); r = MathF.FusedMultiplyAdd(r, t, R5);
        r = MathF.FusedMultiplyAdd(r, t, R4); r = MathF.FusedMultiplyAdd(r, t, R3);
        r = MathF.FusedMultiplyAdd(r, t, R2); r = MathF.FusedMultiplyAdd(r, t, R1);
        r = MathF.FusedMultiplyAdd(r, t, R0);
        return t * MathF.Exp(MathF.FusedMultiplyAdd(-z, z, r));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> OnePlusErf(Vector512<float> u)
    {
        var t = ErfcFactor(u, out var exponent);
        return OnePlusErf(u, t, exponent);
    }

    // The first half of erfc(|u|) = t·exp(−u² + P(t)): t and the exponent, everything before the exp.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ErfcFactor(Vector512<float> u, out Vector512<float> exponent)
    {
        var au = Vector512.Abs(u);
        var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(Vector512.Create(0.5f), au, Vector512<float>.One);
        var r = Vector512.Create(R9);
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R8)); r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R7));
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R6)); r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R5));
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R4)); r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R3));
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R2)); r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R1));
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(R0));
        exponent = Vector512.FusedMultiplyAdd(-au, au, r);
        return t;
    }

    // The second half: 1 + erf(u) from ErfcFactor's t and exponent.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> OnePlusErf(Vector512<float> u, Vector512<float> t, Vector512<float> exponent)
    {
        var erfc = t * ExpNonPositive(exponent);
        return Vector512.ConditionalSelect(Vector512.LessThan(u, Vector512<float>.Zero), erfc, Vector512.Create(2f) - erfc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Gelu(Vector512<float> x) =>
        Vector512.Create(0.5f) * x * OnePlusErf(x * Vector512.Create(InvSqrt2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GeluFromFactor(Vector512<float> x, Vector512<float> t, Vector512<float> exponent) =>
        Vector512.Create(0.5f) * x * OnePlusErf(x * Vector512.Create(InvSqrt2), t, exponent);

    /// <summary>
    /// In place: <see cref="Gelu(Vector512{float})"/> of four rows of 32 floats (row stride ld), bit for bit.
    /// </summary>
    /// <remarks>
    /// One GELU is a single dependency chain of some forty operations (a division, two polynomials, the exp), far longer
    /// than the out-of-order window can overlap with the next vector's when they are written one after the other: the
    /// core then waits on latencies. The eight vectors' chains are written here side by side, all eight up to the exp
    /// argument and then all eight to the end, which measured a third faster per vector than one vector at a time;
    /// twelve at once spilled registers and gained less.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void GeluRows4x32(float* c, int ld)
    {
        float* c1 = c + ld, c2 = c1 + ld, c3 = c2 + ld;
        var x0 = Vector512.Load(c); var x1 = Vector512.Load(c + 16);
        var x2 = Vector512.Load(c1); var x3 = Vector512.Load(c1 + 16);
        var x4 = Vector512.Load(c2); var x5 = Vector512.Load(c2 + 16);
        var x6 = Vector512.Load(c3); var x7 = Vector512.Load(c3 + 16);
        var s = Vector512.Create(InvSqrt2);
        var t0 = ErfcFactor(x0 * s, out var e0); var t1 = ErfcFactor(x1 * s, out var e1);
        var t2 = ErfcFactor(x2 * s, out var e2); var t3 = ErfcFactor(x3 * s, out var e3);
        var t4 = ErfcFactor(x4 * s, out var e4); var t5 = ErfcFactor(x5 * s, out var e5);
        var t6 = ErfcFactor(x6 * s, out var e6); var t7 = ErfcFactor(x7 * s, out var e7);
        GeluFromFactor(x0, t0, e0).Store(c); GeluFromFactor(x1, t1, e1).Store(c + 16);
        GeluFromFactor(x2, t2, e2).Store(c1); GeluFromFactor(x3, t3, e3).Store(c1 + 16);
        GeluFromFactor(x4, t4, e4).Store(c2); GeluFromFactor(x5, t5, e5).Store(c2 + 16);
        GeluFromFactor(x6, t6, e6).Store(c3); GeluFromFactor(x7, t7, e7).Store(c3 + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> OnePlusErf(Vector256<float> u)
    {
        var au = Vector256.Abs(u);
        var t = Vector256<float>.One / Vector256.FusedMultiplyAdd(Vector256.Create(0.5f), au, Vector256<float>.One);
        var r = Vector256.Create(R9);
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R8)); r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R7));
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R6)); r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R5));
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R4)); r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R3));
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R2)); r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R1));
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(R0));
        var erfc = t * ExpNonPositive(Vector256.FusedMultiplyAdd(-au, au, r));
        return Vector256.ConditionalSelect(Vector256.LessThan(u, Vector256<float>.Zero), erfc, Vector256.Create(2f) - erfc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Gelu(Vector256<float> x) =>
        Vector256.Create(0.5f) * x * OnePlusErf(x * Vector256.Create(InvSqrt2));

    // exp for x ≤ 0 (the erfc argument), ~1 ulp; results that would be subnormal are flushed to zero.
    // The BCL's Vector512.Exp computes in double and costs several times more, which showed in the GELU epilogue.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpNonPositive(Vector512<float> x) =>
        Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpFloor)), Vector512<float>.Zero,
            ExpNonPositiveNormal(Vector512.Max(x, Vector512.Create(ExpFloor))));

    /// <summary>
    /// <see cref="ExpNonPositive(Vector512{float})"/> for x in [<see cref="ExpFloor"/>, 0], bit for bit: there its clamp and
    /// flush leave the value alone, so this skips them (four of its ~20 instructions).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpNonPositiveNormal(Vector512<float> x)
    {
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var g = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        g = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), g);
        var p = Vector512.Create(E0);
        p = Vector512.FusedMultiplyAdd(p, g, Vector512.Create(E1)); p = Vector512.FusedMultiplyAdd(p, g, Vector512.Create(E2));
        p = Vector512.FusedMultiplyAdd(p, g, Vector512.Create(E3)); p = Vector512.FusedMultiplyAdd(p, g, Vector512.Create(E4));
        p = Vector512.FusedMultiplyAdd(p, g, Vector512.Create(E5));
        var y = Vector512.FusedMultiplyAdd(p, g * g, g) + Vector512<float>.One;
        return Scale(y, n);
    }

    /// <summary>
    /// In place: <see cref="ExpNonPositiveNormal"/> of four vectors, bit for bit, their chains written in lockstep (each
    /// step for all four before the next), as <see cref="GeluRows4x32"/>: one exp is a chain of some fifteen dependent
    /// operations, which the core overlaps with the next vectors' only as far as its scheduler reaches.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExpNonPositiveNormal4(ref Vector512<float> x0, ref Vector512<float> x1, ref Vector512<float> x2,
        ref Vector512<float> x3)
    {
        var log2E = Vector512.Create(Log2E);
        var n0 = Vector512.Round(x0 * log2E); var n1 = Vector512.Round(x1 * log2E);
        var n2 = Vector512.Round(x2 * log2E); var n3 = Vector512.Round(x3 * log2E);
        var hi = Vector512.Create(-Ln2Hi);
        var g0 = Vector512.FusedMultiplyAdd(n0, hi, x0); var g1 = Vector512.FusedMultiplyAdd(n1, hi, x1);
        var g2 = Vector512.FusedMultiplyAdd(n2, hi, x2); var g3 = Vector512.FusedMultiplyAdd(n3, hi, x3);
        var lo = Vector512.Create(-Ln2Lo);
        g0 = Vector512.FusedMultiplyAdd(n0, lo, g0); g1 = Vector512.FusedMultiplyAdd(n1, lo, g1);
        g2 = Vector512.FusedMultiplyAdd(n2, lo, g2); g3 = Vector512.FusedMultiplyAdd(n3, lo, g3);
        var c0 = Vector512.Create(E0);
        var p0 = c0; var p1 = c0; var p2 = c0; var p3 = c0;
        Step(ref p0, ref p1, ref p2, ref p3, g0, g1, g2, g3, E1);
        Step(ref p0, ref p1, ref p2, ref p3, g0, g1, g2, g3, E2);
        Step(ref p0, ref p1, ref p2, ref p3, g0, g1, g2, g3, E3);
        Step(ref p0, ref p1, ref p2, ref p3, g0, g1, g2, g3, E4);
        Step(ref p0, ref p1, ref p2, ref p3, g0, g1, g2, g3, E5);
        var one = Vector512<float>.One;
        var y0 = Vector512.FusedMultiplyAdd(p0, g0 * g0, g0) + one; var y1 = Vector512.FusedMultiplyAdd(p1, g1 * g1, g1) + one;
        var y2 = Vector512.FusedMultiplyAdd(p2, g2 * g2, g2) + one; var y3 = Vector512.FusedMultiplyAdd(p3, g3 * g3, g3) + one;
        x0 = Scale(y0, n0); x1 = Scale(y1, n1); x2 = Scale(y2, n2); x3 = Scale(y3, n3);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Step(ref Vector512<float> p0, ref Vector512<float> p1, ref Vector512<float> p2, ref Vector512<float> p3,
            Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3, float e)
        {
            var c = Vector512.Create(e);
            p0 = Vector512.FusedMultiplyAdd(p0, g0, c); p1 = Vector512.FusedMultiplyAdd(p1, g1, c);
            p2 = Vector512.FusedMultiplyAdd(p2, g2, c); p3 = Vector512.FusedMultiplyAdd(p3, g3, c);
        }
    }

    // y·2ⁿ: vscalefps rounds the exact product once, as the multiplication by 2ⁿ built from n's bits does, in one
    // instruction instead of a saturating conversion (four), an add, a shift and a multiply.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scale(Vector512<float> y, Vector512<float> n) =>
        Avx512F.IsSupported ? Avx512F.Scale(y, n)
            : y * Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ExpNonPositive(Vector256<float> x)
    {
        var clamped = Vector256.Max(x, Vector256.Create(ExpFloor));
        var n = Vector256.Round(clamped * Vector256.Create(Log2E));
        var g = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), clamped);
        g = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), g);
        var p = Vector256.Create(E0);
        p = Vector256.FusedMultiplyAdd(p, g, Vector256.Create(E1)); p = Vector256.FusedMultiplyAdd(p, g, Vector256.Create(E2));
        p = Vector256.FusedMultiplyAdd(p, g, Vector256.Create(E3)); p = Vector256.FusedMultiplyAdd(p, g, Vector256.Create(E4));
        p = Vector256.FusedMultiplyAdd(p, g, Vector256.Create(E5));
        var y = Vector256.FusedMultiplyAdd(p, g * g, g) + Vector256<float>.One;
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpFloor)), Vector256<float>.Zero, y * scale);
    }
}
