using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <summary>The precisions this build's kernels run; Auto picks the device's preferred half type once it is here.</summary>
    private static readonly Precision[] Supported = [Precision.Float32];

    public Precision ResolvePrecision(Precision requested)
    {
        if (requested == Precision.Auto)
        {
            // bf16 where the tensor cores take it (sm_80+), fp16 on Volta/Turing; fp32 until those kernels exist.
            var half = context.Info.ComputeMajor >= 8 ? Precision.BFloat16 : Precision.Float16;
            return Supported.Contains(half) ? half : Precision.Float32;
        }
        if (Supported.Contains(requested))
            return requested;
        throw new NotSupportedException(requested == Precision.Int8
            ? $"int8 is CPU-only (the CPU backend); the CUDA backend runs {string.Join(", ", Supported.Select(p => p.Name()))}"
            : $"{requested.Name()} is not available on the CUDA backend yet; it runs {string.Join(", ", Supported.Select(p => p.Name()))}");
    }

    public ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias,
        Precision precision = Precision.Float32)
    {
        if (ResolvePrecision(precision) != Precision.Float32)
            throw new NotSupportedException($"{precision.Name()} Linear layers are not available on the CUDA backend yet");
        if (weight.Length != (long)outFeatures * inFeatures || bias.Length != outFeatures)
            throw new ArgumentException($"Linear weight has {weight.Length} values and bias {bias.Length}, expected [{outFeatures}, {inFeatures}] and [{outFeatures}]");
        var context = Current();
        var w = DeviceBuffer<float>.Allocate(context, weight.Length, $"the weights of a Linear layer [{outFeatures}, {inFeatures}]");
        DeviceBuffer<float>? b = null;
        try
        {
            b = DeviceBuffer<float>.Allocate(context, bias.Length, $"the bias of a Linear layer [{outFeatures}]");
            StreamCopy.Upload(stream, weight, w.Pointer);
            StreamCopy.Upload(stream, bias, b.Pointer);
            return new CudaLinearWeights(w, b, outFeatures, inFeatures);
        }
        catch
        {
            w.Dispose();
            b?.Dispose();
            throw;
        }
    }

    private static CudaLinearWeights Weights(ILinearWeights weights) => weights as CudaLinearWeights
        ?? throw new ArgumentException($"expected Linear weights prepared by the CUDA backend, got {weights.GetType().Name}");

    public void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y)
    {
        Current();
        var w = Weights(weights);
        int n = w.OutFeatures, k = w.InFeatures;
        ulong input = Float(x, (long)rows * k, nameof(x));
        ulong output = Float(y, (long)rows * n, nameof(y));
        if (rows == 0)
            return;
        // The residual add needs the old y, so the GEMM then writes to scratch; otherwise it writes y and the epilogue runs in place.
        ulong product = epilogue == LinearEpilogue.BiasAccumulate ? gemmOutput.Get((long)rows * n) : output;
        Gemm(input, w, rows, product);
        int mode = epilogue switch
        {
            LinearEpilogue.Bias => 0,
            LinearEpilogue.BiasGelu => 1,
            LinearEpilogue.BiasAccumulate => 2,
            _ => throw new ArgumentOutOfRangeException(nameof(epilogue), epilogue, null),
        };
        Launch("linear_epilogue.cu", "linear_epilogue_f32", GridStride((long)rows * n), Block, 0,
            new KernelArgs().Add(product).Add(w.Bias.Pointer).Add(rows).Add(n).Add(mode).Add(output));
    }

    public void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y)
    {
        Linear(x, fc1, rows, LinearEpilogue.BiasGelu, hidden);
        Linear(hidden, fc2, rows, LinearEpilogue.BiasAccumulate, y);
    }

    /// <summary>Row-major out[rows, N] = in[rows, K] · W[N, K]ᵀ, no bias: column-major outᵀ[N, rows] = W[K, N]ᵀ · inᵀ[K, rows].</summary>
    private void Gemm(ulong input, CudaLinearWeights w, int rows, ulong output) =>
        blas.GemmStridedBatched(CublasOperation.T, CublasOperation.N, w.OutFeatures, rows, w.InFeatures, 1f,
            w.Weight.Pointer, CudaDataType.R32F, w.InFeatures, (long)w.OutFeatures * w.InFeatures,
            input, CudaDataType.R32F, w.InFeatures, (long)rows * w.InFeatures, 0f,
            output, CudaDataType.R32F, w.OutFeatures, (long)rows * w.OutFeatures, 1, CublasComputeType.Compute32F);

    public void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        Current();
        var w = Weights(patch);
        int grid = imageSize / patchSize, patches = grid * grid, c = w.OutFeatures, k = 3 * patchSize * patchSize;
        int tokens = prefixTokens + patches;
        if (w.InFeatures != k)
            throw new ArgumentException($"patch Linear takes {w.InFeatures} inputs, a {patchSize}x{patchSize} RGB patch has {k}");
        if (prefixTokens > 0 && prefix is null)
            throw new ArgumentException($"{prefixTokens} prefix tokens but no prefix buffer");
        ulong imagesPtr = Float(images, (long)batch * 3 * imageSize * imageSize, nameof(images));
        ulong prefixPtr = prefixTokens > 0 ? OptionalFloat(prefix, (long)prefixTokens * c, nameof(prefix)) : 0UL;
        ulong posPtr = Float(pos, (long)tokens * c, nameof(pos));
        ulong xPtr = Float(x, (long)batch * tokens * c, nameof(x));
        long rows = (long)batch * patches;

        ulong unfolded = unfoldedPatches.Get(rows * k);
        Launch("patch_embed.cu", "patch_unfold_f32", GridStride(rows * k), Block, 0,
            new KernelArgs().Add(imagesPtr).Add(batch).Add(imageSize).Add(patchSize).Add(unfolded));
        ulong embedded = gemmOutput.Get(rows * c);
        Gemm(unfolded, w, checked((int)rows), embedded);
        Launch("patch_embed.cu", "patch_assemble_f32", GridStride((long)batch * tokens * c), Block, 0,
            new KernelArgs().Add(embedded).Add(w.Bias.Pointer).Add(prefixPtr).Add(posPtr).Add(batch).Add(patches).Add(prefixTokens).Add(c).Add(xPtr));
    }

    public void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y)
    {
        Current();
        ulong input = Float(x, (long)rows * channels, nameof(x));
        ulong gamma = Float(weight, channels, nameof(weight));
        ulong beta = Float(bias, channels, nameof(bias));
        ulong output = Float(y, (long)rows * channels, nameof(y));
        if (rows == 0)
            return;
        // One warp per row, 8 rows per block.
        Launch("layer_norm.cu", "layer_norm_f32", Blocks(rows, Block / 32), Block, 0,
            new KernelArgs().Add(input).Add(gamma).Add(beta).Add(rows).Add(channels).Add(eps).Add(output));
    }
}
