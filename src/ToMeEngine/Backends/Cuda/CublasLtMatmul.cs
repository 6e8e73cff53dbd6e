using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>A cuBLASLt handle (one per context is enough; plans carry the shapes).</summary>
internal sealed class CublasLtHandle : CudaResource
{
    public CublasLtHandle(CudaContext context) : base(context)
    {
        try
        {
            CudaLibraries.Require(CudaLibrary.CublasLt);
            context.MakeCurrent();
            CublasCheck.CheckLt(CublasLt.cublasLtCreate(out var handle));
            Handle = handle;
        }
        catch
        {
            AbandonConstruction();
            throw;
        }
    }

    internal nint Handle { get; }

    protected override void Release() => CublasLt.cublasLtDestroy(Handle);
}

/// <summary>
/// A planned row-major linear layer on cuBLASLt: out[rows, outFeatures] = in[rows, inFeatures] ·
/// weight[outFeatures, inFeatures]ᵀ (+ bias[outFeatures]) (then GELU) (+ beta · out), the epilogue fused into the GEMM.
/// Input and weight are <c>dataType</c>; the output (and the C it accumulates into) may be another type, e.g. bf16
/// operands into an fp32 residual stream with beta = 1. The algorithm is chosen once by the heuristic; <see cref="Run"/>
/// only launches. cuBLASLt's GELU epilogue is the tanh approximation, not timm's erf GELU (see linear_epilogue.cu), so
/// the engine does not use it.
/// </summary>
internal sealed unsafe class CublasLtLinear : CudaResource
{
    private readonly CublasLtHandle lt;
    private readonly nint matmulDesc, weightLayout, inputLayout, outputLayout;
    private readonly CublasLtMatmulAlgo algo;

    public CublasLtLinear(
        CublasLtHandle lt, int rows, int inFeatures, int outFeatures, CudaDataType dataType, CublasLtEpilogue epilogue,
        long workspaceBytes, CublasComputeType computeType = CublasComputeType.Compute32F, CudaDataType? outputType = null,
        CudaDataType? biasType = null) : base(lt.Context)
    {
        this.lt = lt;
        Rows = rows;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Epilogue = epilogue;
        WorkspaceBytes = workspaceBytes;
        Context.MakeCurrent();
        nint preference = 0;
        try
        {
            // Column-major view: D[outFeatures, rows] = Wᵀ-as-stored (op T on [inFeatures, outFeatures]) · X[inFeatures, rows].
            CublasCheck.CheckLt(CublasLt.cublasLtMatmulDescCreate(out matmulDesc, computeType, CudaDataType.R32F));
            var transA = (int)CublasOperation.T;
            var transB = (int)CublasOperation.N;
            var epilogueValue = (uint)epilogue;
            CublasCheck.CheckLt(CublasLt.cublasLtMatmulDescSetAttribute(matmulDesc, CublasLtMatmulDescAttribute.TransA, &transA, sizeof(int)));
            CublasCheck.CheckLt(CublasLt.cublasLtMatmulDescSetAttribute(matmulDesc, CublasLtMatmulDescAttribute.TransB, &transB, sizeof(int)));
            CublasCheck.CheckLt(CublasLt.cublasLtMatmulDescSetAttribute(matmulDesc, CublasLtMatmulDescAttribute.Epilogue, &epilogueValue, sizeof(uint)));
            if (HasBias)
            {
                var biasValue = (int)(biasType ?? outputType ?? dataType);
                CublasCheck.CheckLt(CublasLt.cublasLtMatmulDescSetAttribute(matmulDesc, CublasLtMatmulDescAttribute.BiasDataType, &biasValue, sizeof(int)));
            }
            CublasCheck.CheckLt(CublasLt.cublasLtMatrixLayoutCreate(out weightLayout, dataType, (ulong)inFeatures, (ulong)outFeatures, inFeatures));
            CublasCheck.CheckLt(CublasLt.cublasLtMatrixLayoutCreate(out inputLayout, dataType, (ulong)inFeatures, (ulong)rows, inFeatures));
            CublasCheck.CheckLt(CublasLt.cublasLtMatrixLayoutCreate(out outputLayout, outputType ?? dataType, (ulong)outFeatures, (ulong)rows, outFeatures));

            CublasCheck.CheckLt(CublasLt.cublasLtMatmulPreferenceCreate(out preference));
            var maxWorkspace = (ulong)workspaceBytes;
            CublasCheck.CheckLt(CublasLt.cublasLtMatmulPreferenceSetAttribute(preference, CublasLtPreferenceAttribute.MaxWorkspaceBytes, &maxWorkspace, sizeof(ulong)));
            CublasLtHeuristicResult result;
            CublasCheck.CheckLt(CublasLt.cublasLtMatmulAlgoGetHeuristic(lt.Handle, matmulDesc, weightLayout, inputLayout, outputLayout, outputLayout, preference, 1, &result, out var found),
                $"cublasLtMatmulAlgoGetHeuristic(rows {rows}, in {inFeatures}, out {outFeatures}, {dataType}, {epilogue})");
            if (found == 0)
                throw new CudaException(CudaApi.CublasLt, (int)CublasStatus.NotSupported, CublasCheck.Name(CublasStatus.NotSupported),
                    "no algorithm for this shape", $"cublasLtMatmulAlgoGetHeuristic(rows {rows}, in {inFeatures}, out {outFeatures}, {dataType}, {epilogue})");
            algo = result.Algo;
        }
        catch
        {
            ReleaseDescriptors();
            AbandonConstruction();
            throw;
        }
        finally
        {
            if (preference != 0)
                CublasLt.cublasLtMatmulPreferenceDestroy(preference);
        }
    }

    public int Rows { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public CublasLtEpilogue Epilogue { get; }
    public long WorkspaceBytes { get; }
    private bool HasBias => Epilogue is CublasLtEpilogue.Bias or CublasLtEpilogue.ReluBias or CublasLtEpilogue.GeluBias;

    /// <summary>
    /// Queues the GEMM on <paramref name="stream"/>. <paramref name="bias"/> is required by the bias epilogues, ignored
    /// otherwise; <paramref name="beta"/> = 1 adds the result to what <paramref name="output"/> holds (C = D, in place).
    /// </summary>
    public void Run(CudaStream stream, ulong input, ulong weight, ulong bias, ulong output, ulong workspace, float beta = 0)
    {
        ThrowIfDisposed();
        Context.MakeCurrent();
        if (HasBias)
        {
            if (bias == 0)
                throw new ArgumentException($"epilogue {Epilogue} needs a bias pointer");
            CublasCheck.CheckLt(CublasLt.cublasLtMatmulDescSetAttribute(matmulDesc, CublasLtMatmulDescAttribute.BiasPointer, &bias, sizeof(ulong)));
        }
        float alpha = 1;
        var chosen = algo;
        CublasCheck.CheckLt(CublasLt.cublasLtMatmul(lt.Handle, matmulDesc, &alpha, weight, weightLayout, input, inputLayout, &beta,
            output, outputLayout, output, outputLayout, &chosen, workspace, (nuint)WorkspaceBytes, stream.Handle),
            $"cublasLtMatmul(rows {Rows}, in {InFeatures}, out {OutFeatures}, {Epilogue})");
    }

    protected override void Release() => ReleaseDescriptors();

    private void ReleaseDescriptors()
    {
        if (outputLayout != 0) CublasLt.cublasLtMatrixLayoutDestroy(outputLayout);
        if (inputLayout != 0) CublasLt.cublasLtMatrixLayoutDestroy(inputLayout);
        if (weightLayout != 0) CublasLt.cublasLtMatrixLayoutDestroy(weightLayout);
        if (matmulDesc != 0) CublasLt.cublasLtMatmulDescDestroy(matmulDesc);
    }
}
