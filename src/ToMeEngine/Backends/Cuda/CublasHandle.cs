using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>A cuBLAS handle bound to one stream, with an optional user workspace (needed for graph capture).</summary>
internal sealed unsafe class CublasHandle : CudaResource
{
    private readonly nint handle;

    public CublasHandle(CudaContext context, CudaStream stream) : base(context)
    {
        try
        {
            CudaLibraries.Require(CudaLibrary.Cublas);
            context.MakeCurrent();
            CublasCheck.Check(Cublas.cublasCreate_v2(out handle));
        }
        catch
        {
            AbandonConstruction();
            throw;
        }
        try
        {
            CublasCheck.Check(Cublas.cublasSetStream_v2(handle, stream.Handle));
        }
        catch
        {
            Cublas.cublasDestroy_v2(handle);
            AbandonConstruction();
            throw;
        }
        Stream = stream;
    }

    public CudaStream Stream { get; }

    /// <summary>Gives cuBLAS its own workspace so it never allocates during a captured graph.</summary>
    public void SetWorkspace(DeviceBuffer<byte> workspace)
    {
        Context.MakeCurrent();
        CublasCheck.Check(Cublas.cublasSetWorkspace_v2(handle, workspace.Pointer, (nuint)workspace.SizeInBytes));
    }

    /// <summary>Math mode, e.g. <see cref="CublasMath.Pedantic"/> to forbid TF32 in fp32 GEMMs.</summary>
    public void SetMathMode(CublasMath mode)
    {
        Context.MakeCurrent();
        CublasCheck.Check(Cublas.cublasSetMathMode(handle, mode));
    }

    /// <summary>
    /// Column-major batched GEMM: C[i] = alpha · op(A[i]) · op(B[i]) + beta · C[i] for i &lt; batchCount,
    /// with A[i] = a + i · strideA elements. alpha and beta are fp32, so <paramref name="computeType"/>
    /// must be one of the 32F compute types. Row-major Y[M,N] = X[M,K] · W[N,K]ᵀ is
    /// (m: N, n: M, k: K, transA: T, a: W, lda: K, transB: N, b: X, ldb: K, c: Y, ldc: N).
    /// </summary>
    public void GemmStridedBatched(
        CublasOperation transA, CublasOperation transB, int m, int n, int k,
        float alpha,
        ulong a, CudaDataType aType, int lda, long strideA,
        ulong b, CudaDataType bType, int ldb, long strideB,
        float beta,
        ulong c, CudaDataType cType, int ldc, long strideC,
        int batchCount,
        CublasComputeType computeType = CublasComputeType.Compute32F)
    {
        if (computeType is CublasComputeType.Compute16F or CublasComputeType.Compute16FPedantic or CublasComputeType.Compute64F or CublasComputeType.Compute32I)
            throw new ArgumentException($"{computeType} needs non-fp32 alpha/beta; use a 32F compute type");
        Context.MakeCurrent();
        var status = Cublas.cublasGemmStridedBatchedEx(
            handle, transA, transB, m, n, k, &alpha,
            a, aType, lda, strideA, b, bType, ldb, strideB, &beta,
            c, cType, ldc, strideC, batchCount, computeType, CublasGemmAlgo.Default);
        var call = $"cublasGemmStridedBatchedEx({transA}, {transB}, m {m}, n {n}, k {k}, {aType}/{bType}->{cType}, batch {batchCount}, {computeType})";
        try
        {
            CublasCheck.Check(status, call);
        }
        catch (CudaException e) when (status == CublasStatus.AllocFailed)
        {
            // Without a user workspace cuBLAS allocates its own at a handle's first GEMM (and may again per stream).
            throw CudaFaults.OutOfMemory(e, Context, "cuBLAS's workspace, which it allocates at a handle's first GEMM", -1);
        }
    }

    protected override void Release() => Cublas.cublasDestroy_v2(handle);
}
