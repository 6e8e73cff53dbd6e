using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

/// <summary>
/// The CPU backend's bipartite matching against its definition evaluated one pair at a time: every set-A token's cosine
/// similarity to each set-B token as Simd.Dot of the L2-normalized metric rows, the first maximum kept. Bit for bit, so a
/// faster evaluation can never change a merge decision.
/// </summary>
public class BipartiteMatchTests
{
    [Theory]
    [InlineData(1, 1, 64, 0)]
    [InlineData(1, 2, 64, 0)]
    [InlineData(3, 2, 64, 1)]
    [InlineData(3, 197, 64, 1)]
    [InlineData(1, 198, 64, 2)]
    [InlineData(1, 577, 64, 1)]
    [InlineData(1, 1025, 64, 0)]
    [InlineData(5, 9, 64, 1)]
    [InlineData(2, 197, 48, 1)]
    [InlineData(3, 13, 32, 3)]
    [InlineData(1, 197, 40, 1)] // not a multiple of 16: the one-pair-at-a-time loop
    public void MatchesOnePairAtATimeBitForBit(int batch, int tokens, int dim, int prefix)
    {
        var metric = Reference.Random(batch * tokens * dim, seed: tokens * 7 + dim + prefix, scale: 2f);
        // Ties and degenerate rows: every 5th token repeats its predecessor's key, and token 3 of each image is zero.
        for (int i = 0; i < batch * tokens; i++)
        {
            if (i % 5 == 4)
                metric.AsSpan((i - 1) * dim, dim).CopyTo(metric.AsSpan(i * dim, dim));
            if (i % tokens == 3)
                metric.AsSpan(i * dim, dim).Clear();
        }
        int ta = (tokens + 1) / 2, tb = tokens / 2;
        var backend = new CpuBackend(2);
        var m = backend.AllocateFloat(metric.Length);
        backend.Upload(metric, m);
        var best = backend.AllocateFloat(batch * ta);
        var index = backend.AllocateInt(batch * ta);
        backend.BipartiteMatch(m, batch, tokens, dim, prefix, best, index);
        var gotBest = new float[batch * ta];
        var gotIndex = new int[batch * ta];
        backend.Download(best, gotBest);
        backend.Download(index, gotIndex);

        int protectedA = (prefix + 1) / 2, protectedB = prefix / 2;
        var normalized = new float[metric.Length];
        for (int r = 0; r < batch * tokens; r++)
        {
            var src = metric.AsSpan(r * dim, dim);
            float norm = Simd.Norm(src);
            if (norm > 0)
                Simd.Divide(src, norm, normalized.AsSpan(r * dim, dim));
        }
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < ta; i++)
            {
                float max = float.NegativeInfinity;
                int arg = 0;
                for (int j = protectedB; i >= protectedA && j < tb; j++)
                {
                    float s = Simd.Dot(normalized.AsSpan((b * tokens + 2 * i) * dim, dim), normalized.AsSpan((b * tokens + 2 * j + 1) * dim, dim));
                    if (s > max)
                    {
                        max = s;
                        arg = j;
                    }
                }
                Assert.True(BitConverter.SingleToInt32Bits(max) == BitConverter.SingleToInt32Bits(gotBest[b * ta + i]),
                    $"image {b}, A token {i}: similarity {gotBest[b * ta + i]:R}, expected {max:R}");
                Assert.Equal(arg, gotIndex[b * ta + i]);
            }
    }

    // The match's sixteen horizontal sums at once must be Vector512.Sum's own, whose order the runtime fixes: values spread
    // over many binades, so that any other order of the additions rounds differently somewhere.
    [Fact]
    public void SixteenSumsAtOnceMatchVector512SumBitForBit()
    {
        if (!Avx512F.IsSupported)
            return;
        var random = new Random(5);
        var v = new Vector512<float>[16];
        var lanes = new float[16];
        for (int trial = 0; trial < 20000; trial++)
        {
            for (int k = 0; k < 16; k++)
            {
                for (int i = 0; i < 16; i++)
                    lanes[i] = (float)((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-30, 30)));
                v[k] = Vector512.Create(lanes);
            }
            var sums = CpuBackend.Sum16(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]);
            for (int k = 0; k < 16; k++)
                Assert.True(BitConverter.SingleToInt32Bits(Vector512.Sum(v[k])) == BitConverter.SingleToInt32Bits(sums[k]),
                    $"trial {trial}, vector {k}: {sums[k]:R}, expected {Vector512.Sum(v[k]):R}");
        }
    }

    // The metric normalization (sixteen rows at a time where dim allows) against Simd.Norm and Simd.Divide row by row.
    [Theory]
    [InlineData(1, 64)]
    [InlineData(2, 64)]
    [InlineData(15, 32)]
    [InlineData(16, 64)]
    [InlineData(17, 48)]
    [InlineData(197, 64)]
    [InlineData(197, 32)]
    [InlineData(394 * 3, 64)]
    [InlineData(577, 64)]
    [InlineData(1025, 32)]
    [InlineData(197, 40)]
    public void NormalizeMatchesRowByRowBitForBit(int rows, int dim)
    {
        var metric = Reference.Random(rows * dim, seed: rows * 3 + dim, scale: 3f);
        // Zero rows, a NaN row, and rows far from 1 in magnitude.
        for (int r = 0; r < rows; r++)
        {
            var row = metric.AsSpan(r * dim, dim);
            if (r % 7 == 3)
                row.Clear();
            else if (r % 11 == 5)
                row[dim / 2] = float.NaN;
            else if (r % 5 == 1)
                foreach (ref var x in row)
                    x *= r % 2 == 0 ? 1e-20f : 1e18f;
        }
        var got = new float[rows * dim];
        got.AsSpan().Fill(123f);
        CpuBackend.Normalize(metric, rows, dim, got);
        var want = new float[rows * dim];
        for (int r = 0; r < rows; r++)
        {
            var src = metric.AsSpan(r * dim, dim);
            float norm = Simd.Norm(src);
            if (norm > 0)
                Simd.Divide(src, norm, want.AsSpan(r * dim, dim));
        }
        for (int i = 0; i < got.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]),
                $"element {i} (row {i / dim}): {got[i]} vs {want[i]}");
    }
}
