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

/// <summary>
/// Offsets 0, size, 2 size, ... of vector steps over 0..n-1, the last one moved back to n - size so that no
/// step runs past the end (the overlap is computed twice, with the same result); none when n &lt; size.
/// </summary>
internal readonly struct Steps(int n, int size)
{
    public Enumerator GetEnumerator() => new(n, size);

    public struct Enumerator(int n, int size)
    {
        private int current = -size;

        public readonly int Current => current;

        public bool MoveNext()
        {
            if (n < size || current >= n - size) return false;
            current = Math.Min(current + size, n - size);
            return true;
        }
    }
}
