using System.Runtime.Intrinsics.X86;

namespace ToMe.Imaging;

/// <summary>
/// The widest vector code the imaging kernels may use. Every level gives the same bytes; tests run each
/// level the CPU supports against <see cref="Scalar"/>.
/// </summary>
internal enum SimdLevel
{
    Scalar,
    Avx2,
    Avx512,
}

internal static class Simd
{
    public static readonly SimdLevel Best = Avx512F.IsSupported ? SimdLevel.Avx512 : Avx2.IsSupported ? SimdLevel.Avx2 : SimdLevel.Scalar;

    /// <summary>The levels this CPU runs, scalar first.</summary>
    public static IEnumerable<SimdLevel> Supported => Enum.GetValues<SimdLevel>().Where(l => l <= Best);
}
