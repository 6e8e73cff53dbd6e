using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// Contiguous rows of A with 768 &lt; K ≤ 1536 and N ≤ 768 (ViT-S's fc2) are read in place as one K-block instead of
/// packed in K-blocks of 768: the same FMA chain per element, so the same bits.
/// </summary>
public class CpuGemmWholeKTests
{
    private const int Guard = 40;
    private const float Sentinel = -12345.5f;

    // K = 1536 and 769 take the whole-K path (769 was a K-block of 768 and one of 1); K = 3072 and N = 1000 stay packed.
    private static readonly (int N, int K)[] Shapes =
        [(1, 1536), (17, 769), (192, 1536), (384, 1536), (384, 769), (17, 3072), (384, 3072), (1000, 1536)];

    private static float[] Guarded(int length, float[] init)
    {
        var buffer = new float[length + 2 * Guard];
        buffer.AsSpan().Fill(Sentinel);
        init.CopyTo(buffer, Guard);
        return buffer;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(197)]
    [InlineData(577)]
    [InlineData(1025)]
    public void WholeKInPlaceAgreesWithTheScalarKernelAndWithKBlocks(int m)
    {
        // Every epilogue on 1 and 2 threads: bit-identical to the same Vector512 GEMM with the whole-K path off (packed
        // K-blocks of 768, the C tile stored and reloaded between them) and, where the scalar kernel is quick enough and
        // there is no GELU (its exp is path-dependent), to the scalar kernel. The cells around C stay untouched.
        Assert.SkipUnless(CpuGemm.IsSupported(SimdPath.Vector512), "Vector512 is not accelerated here");
        foreach (var (n, k) in Shapes)
        {
            var a = Reference.Random(m * k, 81 + m);
            var w = PackedWeight.Pack(Reference.Random(n * k, 82 + n, 0.5f), n, k);
            var bias = Reference.Random(n, 83);
            var start = Reference.Random(m * n, 84, 2f);
            foreach (var epilogue in new[] { GemmEpilogue.None, GemmEpilogue.Bias, GemmEpilogue.BiasGelu, GemmEpilogue.Accumulate })
            {
                float[]? scalar = null;
                if (epilogue != GemmEpilogue.BiasGelu && (long)m * n * k <= 150_000_000)
                {
                    scalar = start.ToArray();
                    CpuGemm.Linear(a, m, w, bias, scalar, epilogue, 1, SimdPath.Scalar);
                }
                foreach (int threads in new[] { 1, 2 })
                {
                    var blocked = start.ToArray();
                    try
                    {
                        CpuGemm.WholeKInPlace = false;
                        CpuGemm.Linear(a, m, w, bias, blocked, epilogue, threads, SimdPath.Vector512);
                    }
                    finally
                    {
                        CpuGemm.WholeKInPlace = true;
                    }
                    var c = Guarded(m * n, start);
                    CpuGemm.Linear(a, m, w, bias, c.AsSpan(Guard, m * n), epilogue, threads, SimdPath.Vector512);
                    string what = $"m={m} n={n} k={k} {epilogue} threads={threads}";
                    Assert.True(blocked.AsSpan().SequenceEqual(c.AsSpan(Guard, m * n)), $"{what}: differs from K-blocks of 768");
                    if (scalar != null)
                        Assert.True(scalar.AsSpan().SequenceEqual(c.AsSpan(Guard, m * n)), $"{what}: differs from the scalar kernel");
                    Reference.AssertUntouched(c.AsSpan(0, Guard), Sentinel, what);
                    Reference.AssertUntouched(c.AsSpan(Guard + m * n), Sentinel, what);
                }
            }
        }
    }

    [Fact]
    public void WholeKAgreesWithTheFloat64ReferenceAtAStride()
    {
        // The strided form at lda = K (in place, one K-block) and lda > K (packed): both within the reference's bound
        // of the float64 product, and equal to each other.
        int m = 197, n = 384, k = 1536, wide = 1600;
        var a = Reference.Random(m * k, 91);
        var strided = new float[(m - 1) * wide + k];
        for (int r = 0; r < m; r++)
            a.AsSpan(r * k, k).CopyTo(strided.AsSpan(r * wide));
        var wRaw = Reference.Random(n * k, 92);
        var w = PackedWeight.Pack(wRaw, n, k);
        var bias = Reference.Random(n, 93);
        var (expected, magnitude) = Reference.Linear(a, wRaw, bias, m, n, k);
        var inPlace = new float[m * n];
        var packed = new float[m * n];
        CpuGemm.Linear(a, k, m, w, bias, inPlace, n, GemmEpilogue.Bias, 1);
        CpuGemm.Linear(strided, wide, m, w, bias, packed, n, GemmEpilogue.Bias, 1);
        Reference.AssertClose(inPlace, expected, magnitude, k, "in place, whole K");
        Assert.True(inPlace.AsSpan().SequenceEqual(packed), "in place (whole K) and packed (K-blocks) differ");
    }
}
