using ToMe.Backends.Cuda;

namespace ToMe.Tests.Cuda;

/// <summary>
/// kernels/tensor_core.cuh on the emulated device (emulator/tests/kernels/tensor_core_checks.cu): cp.async, ldmatrix and
/// mma.sync m16n8k16 on random tiles against a float64 product, and planted fragment mistakes that must give wrong
/// products, each in the emulator's forward, reverse and random thread orders. The emulator's twins rebuild the matrices from the PTX ISA's fragment layouts, so these prove that the
/// helpers and the kernels' use of them agree with the ISA (and not merely with each other).
/// </summary>
public class TensorCoreHelperTests
{
    private const uint Poison = 0x7fbadbad;

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    [InlineData(false, 3)]
    [InlineData(true, 4)]
    public void MmaTileMatchesFloat64Product(bool bf16, int seed)
    {
        ProductMatches(() => MmaTile(bf16, seed, wrong: 0), $"mma m16n8k16 {(bf16 ? "bf16" : "f16")}");
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(false, 3)]
    [InlineData(true, 1)]
    [InlineData(true, 2)]
    [InlineData(true, 3)]
    public void WrongFragmentMappingGivesAWrongProduct(bool bf16, int wrong)
    {
        ProductIsWrong(() => MmaTile(bf16, seed: 9, wrong), $"planted m16n8k16 mistake {wrong}");
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    public void Mma884MatchesFloat64Product(bool bRow, int seed)
    {
        ProductMatches(() => Mma884Tiles(bRow, seed, wrong: 0), $"mma m8n8k4 B {(bRow ? "row" : "col")}");
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    [InlineData(false, 3)]
    public void Mma884WrongFragmentMappingGivesAWrongProduct(bool bRow, int wrong)
    {
        ProductIsWrong(() => Mma884Tiles(bRow, seed: 9, wrong), $"planted m8n8k4 mistake {wrong}");
    }

    [Fact]
    public void LdmatrixX4TransHandsEachLaneTheTransposedPairs()
    {
        ThreadOrders.InEach(order => LdmatrixX4Trans(order));
    }

    private static void LdmatrixX4Trans(ThreadOrder order)
    {
        using var k = new EmulatorCheckKernels("tensor_core_checks.cu");
        var m = Enumerable.Range(0, 256).Select(i => (ushort)(i * 7 + 3)).ToArray();
        var out_ = k.Allocate<uint>(128);
        k.Run("ldmatrix_x4_trans_tile", 1, 32, new KernelArgs().Add(k.Upload(m)).Add(out_));
        var got = k.Download(out_);
        for (int lane = 0; lane < 32; lane++)
        {
            int g = lane / 4, t = lane % 4;
            for (int i = 0; i < 4; i++)
            {
                // Matrix i: rows from lanes 8i..8i+7, which address rows (i % 2)·8.. and columns (i / 2)·8.. of the tile.
                int r0 = (i % 2) * 8, c0 = (i / 2) * 8;
                uint expected = m[(r0 + 2 * t) * 16 + c0 + g] | ((uint)m[(r0 + 2 * t + 1) * 16 + c0 + g] << 16);
                Assert.True(expected == got[lane * 4 + i], $"{order}: lane {lane} register {i}: 0x{got[lane * 4 + i]:x8}, expected 0x{expected:x8}");
            }
        }
    }

    [Fact]
    public void CpAsyncDataLandsOnlyAtTheWait()
    {
        ThreadOrders.InEach(_ => CpAsyncReadBack());
    }

    private static void CpAsyncReadBack()
    {
        using var k = new EmulatorCheckKernels("tensor_core_checks.cu");
        var input = Gpu.Random(128, seed: 5);
        var x = k.Upload(input);
        var y = k.Allocate<float>(128);
        k.Run("cp_async_read_back", 1, 32, new KernelArgs().Add(x).Add(y).Add(1));
        Assert.Equal(input, k.Download(y));
        k.Run("cp_async_read_back", 1, 32, new KernelArgs().Add(x).Add(y).Add(0));
        Assert.All(k.Download(y), v => Assert.Equal(Poison, BitConverter.SingleToUInt32Bits(v)));
    }

    /// <summary>Exact products summed in double and rounded once: within an fp32 rounding of the float64 result, in every order.</summary>
    private static void ProductMatches(Func<(float[] D, float[] Expected)> run, string what) => ThreadOrders.InEach(order =>
    {
        var (d, expected) = run();
        Gpu.AssertClose(expected, d, 1e-6f, 1e-6f, $"{what} {order}");
    });

    private static void ProductIsWrong(Func<(float[] D, float[] Expected)> run, string what) => ThreadOrders.InEach(order =>
    {
        var (d, expected) = run();
        double worst = d.Zip(expected, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(worst > 0.1, $"{what} went unnoticed in the {order} order (largest difference {worst})");
    });

    /// <summary>Four independent 8×8×4 products (one per quad-pair), A and B row-major, against float64.</summary>
    private static (float[] D, float[] Expected) Mma884Tiles(bool bRow, int seed, int wrong)
    {
        using var k = new EmulatorCheckKernels("tensor_core_checks.cu");
        var a = HalfBits.Encode(Gpu.Random(4 * 32, seed, scale: 2f), bf16: false);
        var b = HalfBits.Encode(Gpu.Random(4 * 32, seed + 100, scale: 2f), bf16: false);
        var c = Gpu.Random(4 * 64, seed + 200);
        var d = k.Allocate<float>(4 * 64);
        k.Run("mma884_tile", 1, 32, new KernelArgs().Add(k.Upload(a)).Add(k.Upload(b)).Add(k.Upload(c)).Add(d).Add(bRow ? 1 : 0).Add(wrong));
        float[] av = HalfBits.Decode(a, bf16: false), bv = HalfBits.Decode(b, bf16: false);
        var expected = new float[4 * 64];
        for (int q = 0; q < 4; q++)
        {
            for (int i = 0; i < 8; i++)
            {
                for (int j = 0; j < 8; j++)
                {
                    double sum = c[q * 64 + i * 8 + j];
                    for (int p = 0; p < 4; p++)
                        sum += (double)av[q * 32 + i * 4 + p] * bv[q * 32 + p * 8 + j];
                    expected[q * 64 + i * 8 + j] = (float)sum;
                }
            }
        }
        return (k.Download(d), expected);
    }

    private static (float[] D, float[] Expected) MmaTile(bool bf16, int seed, int wrong)
    {
        using var k = new EmulatorCheckKernels("tensor_core_checks.cu");
        var a = HalfBits.Encode(Gpu.Random(256, seed, scale: 2f), bf16);
        var b = HalfBits.Encode(Gpu.Random(128, seed + 100, scale: 2f), bf16);
        var c = Gpu.Random(128, seed + 200);
        var d = k.Allocate<float>(128);
        k.Run(bf16 ? "mma_tile_bf16" : "mma_tile_f16", 1, 32, new KernelArgs().Add(k.Upload(a)).Add(k.Upload(b)).Add(k.Upload(c)).Add(d).Add(wrong));
        float[] av = HalfBits.Decode(a, bf16), bv = HalfBits.Decode(b, bf16);
        var expected = new float[128];
        for (int i = 0; i < 16; i++)
        {
            for (int j = 0; j < 8; j++)
            {
                double sum = c[i * 8 + j];
                for (int p = 0; p < 16; p++)
                    sum += (double)av[i * 16 + p] * bv[p * 8 + j];
                expected[i * 8 + j] = (float)sum;
            }
        }
        return (k.Download(d), expected);
    }
}
