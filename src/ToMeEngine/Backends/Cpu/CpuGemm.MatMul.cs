using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

// The single-threaded strided product attention uses (q·kᵀ, p·v), on the same kernels as the Linear.
internal static unsafe partial class CpuGemm
{
    /// <summary>
    /// C = alpha·A·op(B) (or C += … when <paramref name="accumulate"/>), single-threaded: callers parallelise over
    /// batch × heads. alpha scales A as it is packed, i.e. C = (alpha·A)·op(B) — the order timm uses for q·scale.
    /// c must not overlap a or b.
    /// </summary>
    // a: [m, k], row stride lda
    // b: [n, k] row stride ldb when transposeB (C = A·Bᵀ), else [k, n] row stride ldb (C = A·B)
    // c: [m, n], row stride ldc
    [MethodImpl(Jit.Hot)]
    public static void MatMul(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool transposeB,
        Span<float> c, int ldc, int m, int n, int k, float alpha, bool accumulate) =>
        MatMul(a, lda, b, ldb, transposeB, c, ldc, m, n, k, alpha, accumulate, BestPath);

    [MethodImpl(Jit.Hot)]
    internal static void MatMul(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool transposeB,
        Span<float> c, int ldc, int m, int n, int k, float alpha, bool accumulate, SimdPath path)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (!IsSupported(path))
        {
            throw new PlatformNotSupportedException($"{path} kernels are not accelerated on this machine");
        }
        if (m == 0 || n == 0)
        {
            return;
        }
        CheckStride(lda, k, nameof(lda));
        CheckStride(ldc, n, nameof(ldc));
        CheckStride(ldb, transposeB ? k : n, nameof(ldb));
        CheckLength(a.Length, k == 0 ? 0 : (long)(m - 1) * lda + k, nameof(a));
        CheckLength(c.Length, (long)(m - 1) * ldc + n, nameof(c));
        if (k > 0)
        {
            CheckLength(b.Length, transposeB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n, nameof(b));
        }

        long packed = PackedPanelsLength(n, k);
        if (packed > int.MaxValue / 2)
        {
            throw new ArgumentException($"B of [{k}, {n}] is too large");
        }
        var bBuf = AlignedArray<float>.Ensure(ref t_packB, Math.Max(1, (int)packed));
        fixed (float* pa = a, pb = b, pc = c)
        {
            if (k > 0)
            {
                Packing.PackPanels(pb, ldb, transposeB, n, k, bBuf.Pointer);
            }
            MultiplyPacked(pa, lda, bBuf.Pointer, pc, ldc, m, n, k, alpha, accumulate, path);
        }
        GC.KeepAlive(bBuf);
    }

    /// <summary>Floats that <see cref="Packing.PackPanels"/> writes for a K×N operand.</summary>
    internal static long PackedPanelsLength(int n, int k) => (long)((n + Nr - 1) / Nr) * Nr * k;

    /// <summary>
    /// <see cref="MatMul(ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, bool, Span{float}, int, int, int, int, float, bool)"/>
    /// with B already packed by <see cref="Packing.PackPanels"/>, for callers that reuse one packed B across many A blocks
    /// (attention's keys and values). Single-threaded; no argument checks beyond the caller's.
    /// </summary>
    // a: [m, k] row stride lda; packedB: PackedPanelsLength(n, k) floats; c: [m, n] row stride ldc
    // paddedA: a's rows may be read up to m rounded up to whole micro-panels (their products are never stored), so the
    // 512-bit kernels read a short last micro-panel in place too instead of packing it.
    [MethodImpl(Jit.Hot)]
    internal static void MultiplyPacked(float* a, int lda, float* packedB, float* c, int ldc, int m, int n, int k, float alpha,
        bool accumulate, SimdPath path, bool paddedA = false)
    {
        // One Job per thread, reused: attention calls this twice per block of query rows, and allocating each time
        // showed as GC allocation-context clearing in its profile.
        var job = t_sequentialJob ??= new Job();
        job.A = a; job.Lda = lda; job.Alpha = alpha; job.B = packedB; job.C = c; job.Ldc = ldc; job.M = m; job.N = n; job.K = k;
        job.Bias = null; job.Accumulate = accumulate; job.Gelu = false; job.Path = path; job.PackedA = null; job.PackedRows = 0;
        // Attention's C (a score strip, one image's output rows) is in cache: no tile prefetch.
        job.PaddedA = paddedA; job.CCached = true;
        job.RunSequential();
    }

    [ThreadStatic] private static Job? t_sequentialJob;
}
