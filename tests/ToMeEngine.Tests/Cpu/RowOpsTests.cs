using System.Runtime.Intrinsics;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

public class RowOpsTests
{
    [Theory]
    [InlineData(1, 192, 0f)]
    [InlineData(3, 768, 0f)]
    [InlineData(5, 17, 0f)]
    [InlineData(4, 384, 300f)] // large common offset: a one-pass E[x²] − E[x]² would lose the variance
    public void LayerNormMatchesFloat64(int rows, int cols, float offset)
    {
        var x = Reference.Random(rows * cols, cols, 2f, offset);
        var weight = Reference.Random(cols, 2, 1f, 1f);
        var bias = Reference.Random(cols, 3);
        const float eps = 1e-6f;
        var y = new float[rows * cols];
        RowOps.LayerNorm(x, y, rows, cols, weight, bias, eps);
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, variance = 0;
            for (int j = 0; j < cols; j++)
            {
                mean += x[r * cols + j];
            }
            mean /= cols;
            for (int j = 0; j < cols; j++)
            {
                variance += (x[r * cols + j] - mean) * (x[r * cols + j] - mean);
            }
            variance /= cols;
            double rstd = 1 / Math.Sqrt(variance + eps);
            for (int j = 0; j < cols; j++)
            {
                double normalized = (x[r * cols + j] - mean) * rstd;
                double expected = normalized * weight[j] + bias[j];
                // Relative to the terms being added, so a result that cancels to ~0 is judged fairly.
                double scale = Math.Abs(normalized * weight[j]) + Math.Abs(bias[j]);
                Assert.True(Math.Abs(y[r * cols + j] - expected) <= 1e-5 * scale + 1e-7,
                    $"row {r} col {j}: {y[r * cols + j]:R} vs {expected:R}");
            }
        }

        // In place gives the same bits.
        RowOps.LayerNorm(x, x, rows, cols, weight, bias, eps);
        Assert.Equal(y, x);
    }

    // Rows run four at a time on 512-bit machines; the last one to three rows take the one-row loop. Both must give the
    // same bits, in place or not, whatever the width's tail.
    [Theory]
    [InlineData(1, 192, 0f)]
    [InlineData(2, 192, 0f)]
    [InlineData(4, 192, 5f)]
    [InlineData(8, 384, 0f)]
    [InlineData(11, 383, -7f)]
    [InlineData(577, 192, 0f)]
    [InlineData(1025, 192, 30f)]
    [InlineData(197, 384, 0f)]
    [InlineData(197, 768, 0f)]
    [InlineData(13, 31, 0f)]
    [InlineData(2, 1, 0f)]
    [InlineData(3, 2, 0f)]
    [InlineData(7, 15, 0f)]
    [InlineData(4, 16, 0f)]
    [InlineData(5, 17, 0f)]
    [InlineData(197, 192, 0f)]
    [InlineData(9, 197, 50f)]
    [InlineData(3, 577, 300f)]
    [InlineData(6, 1025, 0f)]
    [InlineData(2, 768, -20f)]
    public void LayerNormOfManyRowsMatchesOneRowAtATimeBitForBit(int rows, int cols, float offset)
    {
        var x = Reference.Random(rows * cols, rows + cols, 3f, offset);
        for (int j = 0; j < cols; j += 5)
            x[j] = offset; // a first row with repeated values
        var weight = Reference.Random(cols, 5, 1f, 1f);
        var bias = Reference.Random(cols, 6);
        const float eps = 1e-6f;
        var expected = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            RowOps.LayerNorm(x.AsSpan(r * cols, cols), expected.AsSpan(r * cols, cols), 1, cols, weight, bias, eps);
        var y = new float[rows * cols];
        RowOps.LayerNorm(x, y, rows, cols, weight, bias, eps);
        for (int i = 0; i < y.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(y[i]),
                $"row {i / cols} col {i % cols}: {y[i]:R}, expected {expected[i]:R}");
        RowOps.LayerNorm(x, x, rows, cols, weight, bias, eps);
        Assert.Equal(expected, x);
    }

    [Fact]
    public void SoftmaxWithSizeBiasMatchesFloat64()
    {
        int n = 199;
        var logits = Reference.Random(n, 4, 8f);
        var sizes = new float[n];
        for (int i = 0; i < n; i++)
        {
            sizes[i] = i % 7 == 3 ? 0f : 1 + i % 5;
        }
        var keyBias = sizes.Select(s => MathF.Log(s)).ToArray(); // log 0 = −∞: that key must get exactly zero weight
        var row = logits.ToArray();
        RowOps.Softmax(row, keyBias);

        double max = double.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            if (sizes[i] > 0)
            {
                max = Math.Max(max, logits[i] + Math.Log(sizes[i]));
            }
        }
        double sum = 0;
        var expected = new double[n];
        for (int i = 0; i < n; i++)
        {
            expected[i] = sizes[i] > 0 ? Math.Exp(logits[i] + (double)keyBias[i] - max) : 0;
            sum += expected[i];
        }
        for (int i = 0; i < n; i++)
        {
            expected[i] /= sum;
            if (sizes[i] == 0)
            {
                Assert.Equal(0f, row[i]);
            }
            else
            {
                Assert.True(Math.Abs(row[i] - expected[i]) <= 2e-6 * expected[i] + 1e-12, $"{i}: {row[i]:R} vs {expected[i]:R}");
            }
        }
    }

    [Fact]
    public void SoftmaxOfAnAllMaskedRowIsZeroNotNaN()
    {
        var row = new float[] { 1, 2, 3, 4, 5 };
        RowOps.Softmax(row, Enumerable.Repeat(float.NegativeInfinity, 5).ToArray());
        Assert.Equal(new float[5], row);

        var rows = new float[] { 0, 5, 0, 9, 2, 7, 2, 9 }; // 2 rows of 3 with row stride 4; the 9s are padding
        RowOps.SoftmaxRows(rows, 2, 3, 4, new[] { 0f, float.NegativeInfinity, 0f });
        Assert.Equal(new[] { 0.5f, 0f, 0.5f, 9f, 0.5f, 0f, 0.5f, 9f }, rows);

        var plain = new float[] { 0.5f, 0.5f };
        RowOps.Softmax(plain, default);
        Assert.Equal(new[] { 0.5f, 0.5f }, plain);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(197)]
    [InlineData(577)]
    [InlineData(1025)]
    public unsafe void PaddedSoftmaxRowsGiveSoftmaxsBits(int cols)
    {
        // Rows: plain logits, large ones, one +∞ (NaN after the shift), one NaN, plain, one with every key masked by the bias.
        const int rows = 6;
        int padded = (cols + 15) / 16 * 16, ld = padded + 3;
        var logits = Reference.Random(rows * ld, cols, 8f);
        for (int j = 0; j < cols; j++)
            logits[ld + j] *= 1e3f;
        logits[2 * ld + cols / 2] = float.PositiveInfinity;
        logits[3 * ld + cols - 1] = float.NaN;
        var bias = new float[padded];
        for (int j = 0; j < cols; j++)
            bias[j] = j % 7 == 3 ? float.NegativeInfinity : MathF.Log(1 + j % 5);
        bias.AsSpan(cols).Fill(float.NaN); // padding the softmax must not let through
        foreach (bool withBias in new[] { false, true })
        {
            var actual = logits.ToArray();
            for (int r = 0; r < rows; r++)
                actual.AsSpan(r * ld + padded, ld - padded).Fill(float.NaN); // sentinels past the padding
            var rowBias = withBias ? bias : null;
            var expected = actual.ToArray();
            var allMasked = Enumerable.Repeat(float.NegativeInfinity, cols).ToArray();
            for (int r = 0; r < rows; r++)
                RowOps.Softmax(expected.AsSpan(r * ld, cols), r == 5 ? allMasked : (rowBias ?? default(ReadOnlySpan<float>)));
            fixed (float* x = actual, b = rowBias, masked = allMasked.Concat(new float[padded - cols]).ToArray())
            {
                RowOps.SoftmaxPaddedRows(x, 5, cols, ld, b);
                RowOps.SoftmaxPaddedRows(x + 5 * ld, 1, cols, ld, masked);
            }
            for (int r = 0; r < rows; r++)
            {
                for (int j = 0; j < cols; j++)
                    Assert.True(BitConverter.SingleToInt32Bits(expected[r * ld + j]) == BitConverter.SingleToInt32Bits(actual[r * ld + j])
                        || (float.IsNaN(expected[r * ld + j]) && float.IsNaN(actual[r * ld + j])),
                        $"bias {withBias}, row {r}, col {j}: {actual[r * ld + j]:R} vs {expected[r * ld + j]:R}");
                for (int j = cols; j < padded; j++)
                    Assert.True(r is 2 or 3 || actual[r * ld + j] == 0f, $"row {r}: padding {j} is {actual[r * ld + j]}"); // rows 2, 3 are NaN
                for (int j = padded; j < ld; j++)
                    Assert.True(float.IsNaN(actual[r * ld + j]), $"row {r}: written past its padding at {j}");
            }
            Assert.All(Enumerable.Range(0, cols), j => Assert.True(float.IsNaN(actual[3 * ld + j])));
        }
    }

    [Theory]
    [InlineData(1, 197)]
    [InlineData(2, 5)]
    [InlineData(3, 16)]
    [InlineData(4, 33)]
    [InlineData(9, 197)]
    [InlineData(24, 577)]
    [InlineData(72, 1025)]
    public unsafe void StaggeredPaddedSoftmaxRowsMatchRowByRow(int rows, int cols)
    {
        // The passes of consecutive rows share sweeps: special rows (NaN, every key masked, +∞) at the start, the end and
        // next to each other must not disturb their neighbours.
        int padded = (cols + 15) / 16 * 16, ld = padded + 16;
        var logits = Reference.Random(rows * ld, seed: rows + cols, scale: 6f);
        var random = new Random(rows);
        var bias = new float[padded];
        for (int j = 0; j < cols; j++)
            bias[j] = j % 11 == 5 ? float.NegativeInfinity : MathF.Log(1 + j % 3);
        foreach (int special in new[] { 0, rows - 1, rows / 2, Math.Min(rows - 1, rows / 2 + 1), random.Next(rows) })
        {
            switch (special % 3)
            {
                case 0: logits[special * ld + random.Next(cols)] = float.NaN; break;
                case 1: logits.AsSpan(special * ld, cols).Fill(float.NegativeInfinity); break;
                default: logits[special * ld + random.Next(cols)] = float.PositiveInfinity; break;
            }
        }
        foreach (bool withBias in new[] { false, true })
            AssertPaddedRowsGiveSoftmaxsBits(logits, rows, cols, ld, withBias ? bias : null, zeroPadding: false);
    }

    // SoftmaxPaddedRows over rows of length cols in a row stride ld (padded to whole vectors, then NaN up to ld) against
    // Softmax row by row: the same bits (any NaN for a NaN), nothing written past the padding, and where zeroPadding the
    // padding between cols and the whole vector zeroed.
    private static unsafe void AssertPaddedRowsGiveSoftmaxsBits(float[] logits, int rows, int cols, int ld, float[]? bias, bool zeroPadding)
    {
        int padded = (cols + 15) / 16 * 16;
        var actual = logits.ToArray();
        for (int r = 0; r < rows; r++)
            actual.AsSpan(r * ld + padded, ld - padded).Fill(float.NaN);
        var expected = actual.ToArray();
        for (int r = 0; r < rows; r++)
            RowOps.Softmax(expected.AsSpan(r * ld, cols), bias is null ? default : bias.AsSpan(0, cols));
        fixed (float* x = actual, b = bias)
            RowOps.SoftmaxPaddedRows(x, rows, cols, ld, b);
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < cols; j++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[r * ld + j]) == BitConverter.SingleToInt32Bits(actual[r * ld + j])
                    || (float.IsNaN(expected[r * ld + j]) && float.IsNaN(actual[r * ld + j])),
                    $"bias {bias is not null}, row {r}, col {j}: {actual[r * ld + j]:R} vs {expected[r * ld + j]:R}");
            if (zeroPadding)
                for (int j = cols; j < padded; j++)
                    Assert.Equal(0f, actual[r * ld + j]);
            for (int j = padded; j < ld; j++)
                Assert.True(float.IsNaN(actual[r * ld + j]), $"row {r}: written past its padding at {j}");
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 16)]
    [InlineData(7, 17)]
    [InlineData(9, 64)]
    [InlineData(12, 65)]
    [InlineData(24, 197)]
    [InlineData(13, 577)]
    [InlineData(10, 1025)]
    public unsafe void PaddedSoftmaxRowsAroundTheExpsNormalRangeGiveSoftmaxsBits(int rows, int cols)
    {
        // Rows whose logits span just under, exactly or just over exp's normal range below the maximum (87.3), with the
        // lowest logit in a full vector, in the partial last one or both: the rows inside take the exp without its clamp
        // and flush, the others the full exp; each must give Softmax's bits, zeros and subnormal-range flushes included.
        int padded = (cols + 15) / 16 * 16, ld = padded + 16;
        var random = new Random(rows * 31 + cols);
        var logits = Reference.Random(rows * ld, seed: rows + 7 * cols, scale: 40f, offset: -40f);
        float[] spans = [VectorMath.ExpFloor, BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(VectorMath.ExpFloor) - 1),
            BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(VectorMath.ExpFloor) + 1), -80f, -87.5f, -100f, -1e30f];
        for (int r = 0; r < rows; r++)
        {
            float max = r % 2 == 0 ? 0f : 3f * r - 20f;
            var row = logits.AsSpan(r * ld, cols);
            for (int j = 0; j < cols; j++)
                row[j] = max + MathF.Max(row[j], -80f);
            row[random.Next(cols)] = max;
            float span = spans[r % spans.Length];
            int at = r % 3 == 0 ? cols - 1 : random.Next(cols);
            row[at] = max + span;
            if (r % 4 == 1)
                row[random.Next(cols)] = max + span;
        }
        // No logit here is NaN, so the helper's NaN-for-NaN allowance never applies: every value must match bit for bit.
        Assert.DoesNotContain(logits, float.IsNaN);
        var bias = new float[padded];
        for (int j = 0; j < cols; j++)
            bias[j] = MathF.Log(1 + j % 4);
        AssertPaddedRowsGiveSoftmaxsBits(logits, rows, cols, ld, null, zeroPadding: true);
        AssertPaddedRowsGiveSoftmaxsBits(logits, rows, cols, ld, bias, zeroPadding: true);
    }

    [Fact]
    public void ExpWithoutClampAndFlushMatchesTheFullExpOverItsNormalRange()
    {
        // Every float in [ExpFloor, 0] at a stride, both ends included, one vector and four in lockstep.
        var xs = new List<float>();
        for (int bits = 0; bits >= 0; bits += 4093)
        {
            float x = -BitConverter.Int32BitsToSingle(bits);
            if (x < VectorMath.ExpFloor)
                break;
            xs.Add(x);
        }
        xs.AddRange([0f, -0f, VectorMath.ExpFloor, -float.Epsilon, -1e-30f, -87f, -0.5f * MathF.Log(2f)]);
        while (xs.Count % 64 != 0)
            xs.Add(-1f);
        var v = xs.ToArray();
        for (int i = 0; i < v.Length; i += 64)
        {
            var x = new Vector512<float>[4];
            for (int k = 0; k < 4; k++)
                x[k] = Vector512.Create(v.AsSpan(i + 16 * k, 16));
            var (e0, e1, e2, e3) = (x[0], x[1], x[2], x[3]);
            VectorMath.ExpNonPositiveNormal4(ref e0, ref e1, ref e2, ref e3);
            Vector512<float>[] four = [e0, e1, e2, e3];
            for (int k = 0; k < 4; k++)
            {
                var full = VectorMath.ExpNonPositive(x[k]);
                var one = VectorMath.ExpNonPositiveNormal(x[k]);
                for (int l = 0; l < 16; l++)
                {
                    Assert.True(BitConverter.SingleToInt32Bits(full[l]) == BitConverter.SingleToInt32Bits(one[l]), $"exp({x[k][l]:R})");
                    Assert.True(BitConverter.SingleToInt32Bits(full[l]) == BitConverter.SingleToInt32Bits(four[k][l]), $"exp({x[k][l]:R}), four");
                }
            }
        }
    }

    [Fact]
    public void ArgMaxTakesTheLowestIndexOnTies()
    {
        var row = new float[100];
        row[37] = 5f;
        row[64] = 5f;
        row[90] = 5f;
        Assert.Equal(37, RowOps.ArgMax(row, out float max));
        Assert.Equal(5f, max);

        Assert.Equal(0, RowOps.ArgMax(new float[40], out _));
        Assert.Equal(2, RowOps.ArgMax(new[] { -3f, -2f, -0f, 0f, -1f }, out _));
        Assert.Equal(3, RowOps.ArgMax(new[] { 1f, 9f, 2f, float.NaN, 9f, float.NaN }, out max));
        Assert.True(float.IsNaN(max));
        Assert.Equal(-1, RowOps.ArgMax(ReadOnlySpan<float>.Empty, out _));

        var x = Reference.Random(7 * 33, 5);
        var maxes = new float[7];
        var indices = new int[7];
        RowOps.ArgMaxRows(x, 7, 33, maxes, indices);
        for (int r = 0; r < 7; r++)
        {
            var slice = x.AsSpan(r * 33, 33);
            int expected = 0;
            for (int j = 1; j < 33; j++)
            {
                if (slice[j] > slice[expected])
                {
                    expected = j;
                }
            }
            Assert.Equal(expected, indices[r]);
            Assert.Equal(slice[expected], maxes[r]);
        }
    }

    [Fact]
    public void L2NormalizeGivesUnitRowsAndLeavesZeroRowsZero()
    {
        int rows = 4, cols = 65;
        var x = Reference.Random(rows * cols, 6, 3f);
        x.AsSpan(2 * cols, cols).Clear();
        var original = x.ToArray();
        RowOps.L2NormalizeRows(x, rows, cols);
        for (int r = 0; r < rows; r++)
        {
            double norm = 0;
            for (int j = 0; j < cols; j++)
            {
                norm += (double)original[r * cols + j] * original[r * cols + j];
            }
            norm = Math.Sqrt(norm);
            for (int j = 0; j < cols; j++)
            {
                double expected = norm == 0 ? 0 : original[r * cols + j] / norm;
                Assert.True(Math.Abs(x[r * cols + j] - expected) <= 1e-6 * Math.Abs(expected) + 1e-9, $"[{r}, {j}]");
            }
        }
        Assert.All(x.AsSpan(2 * cols, cols).ToArray(), v => Assert.Equal(0f, v));
    }
}
