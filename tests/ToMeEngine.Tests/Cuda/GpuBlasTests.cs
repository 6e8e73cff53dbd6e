using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Tests.Cuda;

/// <summary>cuBLAS and cuBLASLt GEMMs against the CPU on awkward shapes.</summary>
public class GpuBlasTests
{
    private static void RequireCublas()
    {
        if (!CudaLibraries.TryLoad(CudaLibrary.Cublas, out _, out var tried) || !CudaLibraries.TryLoad(CudaLibrary.CublasLt, out _, out tried))
            Support.GpuRequirement.SkipOrFail("cuBLAS/cuBLASLt not found; tried:\n  " + string.Join("\n  ", tried));
    }

    [Fact]
    public void SgemmStridedBatchedMatchesCpu()
    {
        using var context = Gpu.Context();
        RequireCublas();
        using var stream = new CudaStream(context);
        using var blas = new CublasHandle(context, stream);
        blas.SetMathMode(CublasMath.Pedantic);
        const int batch = 3, rows = 37, inFeatures = 53, outFeatures = 19;
        var x = Gpu.Random(batch * rows * inFeatures, seed: 11);
        var w = Gpu.Random(batch * outFeatures * inFeatures, seed: 12);
        using var dx = DeviceBuffer<float>.FromHost(stream, x);
        using var dw = DeviceBuffer<float>.FromHost(stream, w);
        using var dy = DeviceBuffer<float>.Allocate(context, batch * rows * outFeatures);

        // Row-major Y[M,N] = X[M,K]·W[N,K]ᵀ is column-major Yᵀ[N,M] = W[K,N]ᵀ·Xᵀ[K,M].
        blas.GemmStridedBatched(CublasOperation.T, CublasOperation.N, outFeatures, rows, inFeatures, 1f,
            dw.Pointer, CudaDataType.R32F, inFeatures, outFeatures * inFeatures,
            dx.Pointer, CudaDataType.R32F, inFeatures, rows * inFeatures, 0f,
            dy.Pointer, CudaDataType.R32F, outFeatures, rows * outFeatures, batch);

        Gpu.AssertClose(CpuTwins.LinearBatched(x, w, batch, rows, inFeatures, outFeatures), dy.ToArray(stream), 1e-5f, 1e-5f, "sgemm");
    }

    [Fact]
    public void HgemmWithFp32AccumulationMatchesCpu()
    {
        using var context = Gpu.Context();
        RequireCublas();
        using var stream = new CudaStream(context);
        using var blas = new CublasHandle(context, stream);
        const int rows = 197, inFeatures = 64, outFeatures = 72;
        // Inputs rounded to fp16 first so the CPU reference sees exactly what the GPU sees.
        var x = Gpu.Random(rows * inFeatures, seed: 13).Select(v => (float)(Half)v).ToArray();
        var w = Gpu.Random(outFeatures * inFeatures, seed: 14).Select(v => (float)(Half)v).ToArray();
        using var dx = DeviceBuffer<Half>.FromHost(stream, x.Select(v => (Half)v).ToArray());
        using var dw = DeviceBuffer<Half>.FromHost(stream, w.Select(v => (Half)v).ToArray());
        using var dy = DeviceBuffer<Half>.Allocate(context, rows * outFeatures);

        blas.GemmStridedBatched(CublasOperation.T, CublasOperation.N, outFeatures, rows, inFeatures, 1f,
            dw.Pointer, CudaDataType.R16F, inFeatures, 0,
            dx.Pointer, CudaDataType.R16F, inFeatures, 0, 0f,
            dy.Pointer, CudaDataType.R16F, outFeatures, 0, 1);

        var expected = CpuTwins.LinearBatched(x, w, 1, rows, inFeatures, outFeatures);
        Gpu.AssertClose(expected, dy.ToArray(stream).Select(h => (float)h).ToArray(), 2e-3f, 2e-3f, "hgemm");
    }

    [Fact]
    public void CublasLtLinearWithBiasEpilogueMatchesCpu()
    {
        using var context = Gpu.Context();
        RequireCublas();
        using var stream = new CudaStream(context);
        using var lt = new CublasLtHandle(context);
        const int rows = 197, inFeatures = 96, outFeatures = 40;
        const long workspaceBytes = 4 << 20;
        var x = Gpu.Random(rows * inFeatures, seed: 15);
        var w = Gpu.Random(outFeatures * inFeatures, seed: 16);
        var bias = Gpu.Random(outFeatures, seed: 17);
        using var dx = DeviceBuffer<float>.FromHost(stream, x);
        using var dw = DeviceBuffer<float>.FromHost(stream, w);
        using var dbias = DeviceBuffer<float>.FromHost(stream, bias);
        using var dy = DeviceBuffer<float>.Allocate(context, rows * outFeatures);
        using var workspace = DeviceBuffer<byte>.Allocate(context, workspaceBytes);
        using var linear = new CublasLtLinear(lt, rows, inFeatures, outFeatures, CudaDataType.R32F, CublasLtEpilogue.Bias, workspaceBytes,
            CublasComputeType.Compute32FPedantic);

        linear.Run(stream, dx.Pointer, dw.Pointer, dbias.Pointer, dy.Pointer, workspace.Pointer);

        Gpu.AssertClose(CpuTwins.LinearBatched(x, w, 1, rows, inFeatures, outFeatures, bias), dy.ToArray(stream), 1e-5f, 1e-5f, "cublasLt linear+bias");
    }
}
