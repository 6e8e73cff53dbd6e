using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Tests.Cuda;

/// <summary>
/// cuBLAS and cuBLASLt as BLAS defines them, against a float64 reference written from the definition: column-major
/// operands, each transpose, leading dimensions larger than the rows (the gap must stay untouched), batch strides
/// (0 broadcasts), alpha and beta, the TF32 math mode, and cuBLASLt's epilogues. Inputs are uploaded in order on the
/// handle's stream, so these hold on a GPU as on the emulated device.
/// </summary>
public class CublasSemanticsTests
{
    private const float Sentinel = -777.25f;

    private sealed class Blas : IDisposable
    {
        private readonly List<IDisposable> owned = [];

        public Blas()
        {
            Context = Gpu.Context();
            if (!CudaLibraries.TryLoad(CudaLibrary.Cublas, out _, out var tried))
                Support.GpuRequirement.SkipOrFail("cuBLAS not found; tried:\n  " + string.Join("\n  ", tried));
            Stream = new CudaStream(Context);
            Handle = new CublasHandle(Context, Stream);
        }

        public CudaContext Context { get; }
        public CudaStream Stream { get; }
        public CublasHandle Handle { get; }

        public DeviceBuffer<float> Upload(float[] values)
        {
            var buffer = DeviceBuffer<float>.Allocate(Context, values.Length);
            owned.Add(buffer);
            StreamCopy.Upload(Stream, values, buffer.Pointer);
            return buffer;
        }

        public float[] Download(DeviceBuffer<float> buffer)
        {
            var values = new float[buffer.Length];
            StreamCopy.Download(Stream, buffer.Pointer, values.AsSpan());
            return values;
        }

        public void Dispose()
        {
            foreach (var resource in owned)
                resource.Dispose();
            Handle.Dispose();
            Stream.Dispose();
            Context.Dispose();
        }
    }

    // Element (i, j) of op(X) for a column-major X stored at offset with leading dimension ld.
    private static double Op(float[] x, bool transposed, int ld, long offset, int i, int j) =>
        transposed ? x[offset + j + (long)i * ld] : x[offset + i + (long)j * ld];

    // The cuBLAS enums are internal, so the cases name them as text (a public test method cannot take them).
    [Theory]
    [InlineData(nameof(CublasOperation.N), nameof(CublasOperation.N))]
    [InlineData(nameof(CublasOperation.N), nameof(CublasOperation.T))]
    [InlineData(nameof(CublasOperation.T), nameof(CublasOperation.N))]
    [InlineData(nameof(CublasOperation.T), nameof(CublasOperation.T))]
    public void GemmHonoursTransposesLeadingDimensionsAndBatchStrides(string opA, string opB)
    {
        var transA = Enum.Parse<CublasOperation>(opA);
        var transB = Enum.Parse<CublasOperation>(opB);
        using var blas = new Blas();
        const int m = 37, n = 29, k = 53, batch = 3;
        const float alpha = 0.75f, beta = 0.5f;
        bool ta = transA == CublasOperation.T, tb = transB == CublasOperation.T;
        int rowsA = ta ? k : m, colsA = ta ? m : k, rowsB = tb ? n : k, colsB = tb ? k : n;
        int lda = rowsA + 3, ldb = rowsB + 5, ldc = m + 2;
        long strideA = (long)lda * colsA + 7, strideB = 0, strideC = (long)ldc * n + 11;   // B is shared by every batch
        var a = Gpu.Random((int)(strideA * batch), seed: 31);
        var b = Gpu.Random(ldb * colsB, seed: 32);
        var c = Enumerable.Repeat(Sentinel, (int)(strideC * batch)).ToArray();
        var random = new Random(33);
        for (int s = 0; s < batch; s++)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++)
                    c[s * strideC + i + (long)j * ldc] = (float)random.NextDouble();
        var expected = c.ToArray();
        for (int s = 0; s < batch; s++)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++)
                {
                    double sum = 0;
                    for (int p = 0; p < k; p++)
                        sum += Op(a, ta, lda, s * strideA, i, p) * Op(b, tb, ldb, s * strideB, p, j);
                    long at = s * strideC + i + (long)j * ldc;
                    expected[at] = (float)(alpha * sum + beta * c[at]);
                }

        var da = blas.Upload(a);
        var db = blas.Upload(b);
        var dc = blas.Upload(c);
        blas.Handle.GemmStridedBatched(transA, transB, m, n, k, alpha, da.Pointer, CudaDataType.R32F, lda, strideA,
            db.Pointer, CudaDataType.R32F, ldb, strideB, beta, dc.Pointer, CudaDataType.R32F, ldc, strideC, batch);
        var actual = blas.Download(dc);
        // Outside the m×n blocks (the ld gap, the batch gap) the sentinels must survive bit for bit.
        Gpu.AssertClose(expected, actual, 2e-5f, 1e-5f, $"GEMM {transA}{transB}, lda {lda}, ldb {ldb}, ldc {ldc}, batch strides {strideA}/{strideB}/{strideC}");
        Assert.Contains(actual, v => v.Equals(Sentinel));
    }

    [Fact]
    public void Tf32MathModeRoundsInputsAndTheDefaultDoesNot()
    {
        using var blas = new Blas();
        const int m = 64, n = 48, k = 256;
        var a = Gpu.Random(m * k, seed: 41);
        var b = Gpu.Random(k * n, seed: 42);
        var expected = new float[m * n];
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                    sum += (double)a[i + p * m] * b[p + j * k];
                expected[i + j * m] = (float)sum;
            }
        float MaxError(CublasMath mode)
        {
            blas.Handle.SetMathMode(mode);
            var dc = blas.Upload(new float[m * n]);
            blas.Handle.GemmStridedBatched(CublasOperation.N, CublasOperation.N, m, n, k, 1f, blas.Upload(a).Pointer, CudaDataType.R32F, m, 0,
                blas.Upload(b).Pointer, CudaDataType.R32F, k, 0, 0f, dc.Pointer, CudaDataType.R32F, m, 0, 1);
            return blas.Download(dc).Zip(expected, (x, y) => MathF.Abs(x - y)).Max();
        }
        float fp32 = MaxError(CublasMath.Default), tf32 = MaxError(CublasMath.TF32TensorOp);
        Assert.True(fp32 < 1e-4f, $"fp32 GEMM error {fp32}");
        Assert.True(tf32 > 4 * fp32 && tf32 < 5e-2f, $"TF32 error {tf32} (fp32: {fp32}): inputs rounded to 10 mantissa bits");
    }

    [Theory]
    [InlineData(nameof(CublasLtEpilogue.Default))]
    [InlineData(nameof(CublasLtEpilogue.Relu))]
    [InlineData(nameof(CublasLtEpilogue.Bias))]
    [InlineData(nameof(CublasLtEpilogue.ReluBias))]
    [InlineData(nameof(CublasLtEpilogue.Gelu))]
    [InlineData(nameof(CublasLtEpilogue.GeluBias))]
    public void LtEpiloguesFollowTheirDefinitions(string epilogueName)
    {
        var epilogue = Enum.Parse<CublasLtEpilogue>(epilogueName);
        using var blas = new Blas();
        using var lt = new CublasLtHandle(blas.Context);
        const int rows = 33, inFeatures = 40, outFeatures = 24;
        const long workspaceBytes = 1 << 20;
        var x = Gpu.Random(rows * inFeatures, seed: 51, scale: 2f);
        var w = Gpu.Random(outFeatures * inFeatures, seed: 52);
        var bias = Gpu.Random(outFeatures, seed: 53);
        bool withBias = epilogue is CublasLtEpilogue.Bias or CublasLtEpilogue.ReluBias or CublasLtEpilogue.GeluBias;
        var linear = CpuTwins.LinearBatched(x, w, 1, rows, inFeatures, outFeatures, withBias ? bias : null);
        // cuBLASLt's GELU is the tanh approximation, not erf.
        var expected = linear.Select(v => epilogue switch
        {
            CublasLtEpilogue.Relu or CublasLtEpilogue.ReluBias => MathF.Max(v, 0),
            CublasLtEpilogue.Gelu or CublasLtEpilogue.GeluBias => (float)(0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))),
            _ => v,
        }).ToArray();
        using var plan = new CublasLtLinear(lt, rows, inFeatures, outFeatures, CudaDataType.R32F, epilogue, workspaceBytes);
        var y = blas.Upload(new float[rows * outFeatures]);
        using var workspace = DeviceBuffer<byte>.Allocate(blas.Context, workspaceBytes);
        plan.Run(blas.Stream, blas.Upload(x).Pointer, blas.Upload(w).Pointer, blas.Upload(bias).Pointer, y.Pointer, workspace.Pointer);
        Gpu.AssertClose(expected, blas.Download(y), 2e-5f, 1e-5f, $"cuBLASLt epilogue {epilogue}");
    }
}
