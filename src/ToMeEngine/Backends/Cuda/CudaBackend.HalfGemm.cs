using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>The Linear layers of bf16 / fp16 passes: cuBLASLt GEMMs on half operands with fp32 accumulation.</summary>
internal sealed partial class CudaBackend
{
    /// <summary>cuBLASLt's workspace: 32 MiB, what NVIDIA recommends for Hopper (smaller GPUs use less of it).</summary>
    private const long LtWorkspaceBytes = 32L << 20;

    /// <summary>Plans kept at most; a service that sees many batch sizes starts over rather than growing without bound.</summary>
    private const int MaxLtPlans = 512;

    private CublasLtHandle? lt;
    private DeviceBuffer<byte>? ltWorkspace;
    private readonly Dictionary<(int Rows, int In, int Out, FloatStorage Operands, FloatStorage Output, CublasLtEpilogue Epilogue), CublasLtLinear> ltPlans = [];

    /// <summary>
    /// x (half) · Wᵀ with the bias in cuBLASLt's epilogue. Bias: y in x's storage (or fp32); BiasGelu: fp32 scratch, then
    /// the exact erf GELU fused with the rounding to half (gelu_cast); BiasAccumulate: y is the fp32 residual stream and
    /// the GEMM adds into it (beta = 1).
    /// </summary>
    private void HalfLinear(DeviceBuffer x, CudaLinearWeights w, int rows, LinearEpilogue epilogue, DeviceBuffer y)
    {
        int n = w.OutFeatures, k = w.InFeatures;
        var (input, inputStorage) = Activation(x, (long)rows * k, nameof(x));
        var (output, outputStorage) = Activation(y, (long)rows * n, nameof(y));
        if (inputStorage != w.Storage)
            throw new ArgumentException($"x is {inputStorage.Suffix()}, the Linear layer {w.Storage.Suffix()}: a GEMM takes both operands in one type");
        if (rows == 0)
            return;
        switch (epilogue)
        {
            case LinearEpilogue.Bias:
                HalfGemm(input, w, rows, outputStorage, CublasLtEpilogue.Bias, output, 0f);
                break;
            case LinearEpilogue.BiasGelu:
                if (outputStorage == FloatStorage.F32)
                    throw new ArgumentException("a half-precision fc1 writes its GELU output in half (y is fp32)");
                ulong product = gemmOutput.Get((long)rows * n);
                HalfGemm(input, w, rows, FloatStorage.F32, CublasLtEpilogue.Bias, product, 0f);
                Launch("linear_epilogue.cu", $"gelu_cast_{outputStorage.Suffix()}", GridStride((long)rows * n), Block, 0,
                    new KernelArgs().Add(product).Add((long)rows * n).Add(output));
                break;
            case LinearEpilogue.BiasAccumulate:
                if (outputStorage != FloatStorage.F32)
                    throw new ArgumentException("the residual stream a Linear adds into is fp32 (y is half)");
                HalfGemm(input, w, rows, FloatStorage.F32, CublasLtEpilogue.Bias, output, 1f);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(epilogue), epilogue, null);
        }
    }

    /// <summary>out[rows, N] (+)= in[rows, K] · W[N, K]ᵀ (+ bias) on half operands, fp32 accumulation; the plan cached per shape.</summary>
    private void HalfGemm(ulong input, CudaLinearWeights w, int rows, FloatStorage outputStorage, CublasLtEpilogue epilogue, ulong output, float beta)
    {
        var key = (rows, w.InFeatures, w.OutFeatures, w.Storage, outputStorage, epilogue);
        if (!ltPlans.TryGetValue(key, out var plan))
        {
            lt ??= new CublasLtHandle(context);
            ltWorkspace ??= DeviceBuffer<byte>.Allocate(context, LtWorkspaceBytes, $"cuBLASLt's workspace ({CudaFaults.SetOnce})");
            if (ltPlans.Count >= MaxLtPlans)
                ClearLtPlans();
            // Bias in fp32 whatever the output: an additive term read once per column.
            plan = new CublasLtLinear(lt, rows, w.InFeatures, w.OutFeatures, w.Storage.DataType(), epilogue, LtWorkspaceBytes,
                CublasComputeType.Compute32F, outputStorage.DataType(), CudaDataType.R32F);
            ltPlans[key] = plan;
        }
        plan.Run(stream, input, w.Weight, w.Bias.Pointer, output, ltWorkspace!.Pointer, beta);
    }

    private void ClearLtPlans()
    {
        foreach (var plan in ltPlans.Values)
            plan.Dispose();
        ltPlans.Clear();
    }

    private void DisposeLt()
    {
        ClearLtPlans();
        ltWorkspace?.Dispose();
        lt?.Dispose();
    }
}
