using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <summary>
    /// The precisions the CUDA backend runs: fp32 (exact, TF32 off), tf32 (fp32 storage, cuBLAS with TF32 inputs), and
    /// bf16 / fp16 (half weights and activations, fp32 accumulation and statistics; docs/cuda.md).
    /// </summary>
    private static readonly Precision[] Supported = [Precision.Float32, Precision.TensorFloat32, Precision.BFloat16, Precision.Float16];

    public Precision ResolvePrecision(Precision requested)
    {
        bool ampere = context.Info.ComputeMajor >= 8;
        if (requested == Precision.Auto)
            return ampere ? Precision.BFloat16 : Precision.Float16;   // bf16 where the tensor cores take it
        if (requested == Precision.BFloat16 && !ampere)
            throw new NotSupportedException(
                $"bf16 needs tensor cores of sm_80 or newer; this GPU is sm_{context.Info.ComputeMajor}{context.Info.ComputeMinor} (use fp16)");
        if (Supported.Contains(requested))
            return requested;
        throw new NotSupportedException(requested == Precision.Int8
            ? $"int8 is CPU-only (the CPU backend); the CUDA backend runs {string.Join(", ", Supported.Select(p => p.Name()))}"
            : $"{requested.Name()} is not available on the CUDA backend; it runs {string.Join(", ", Supported.Select(p => p.Name()))}");
    }

    public DeviceBuffer AllocateActivation(long length, Precision precision)
    {
        var storage = FloatStorages.Of(ResolvePrecision(precision));
        return storage == FloatStorage.F32
            ? AllocateFloat(length)
            : new CudaBuffer<ushort>(this, DeviceBuffer<ushort>.Allocate(Current(), length), storage);
    }

    public ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias,
        Precision precision = Precision.Float32)
    {
        precision = ResolvePrecision(precision);
        if (weight.Length != (long)outFeatures * inFeatures || bias.Length != outFeatures)
            throw new ArgumentException($"Linear weight has {weight.Length} values and bias {bias.Length}, expected [{outFeatures}, {inFeatures}] and [{outFeatures}]");
        var context = Current();
        var storage = FloatStorages.Of(precision);
        string what = $"the weights of a Linear layer [{outFeatures}, {inFeatures}]";
        IDisposable? w = null;
        DeviceBuffer<float>? b = null;
        try
        {
            ulong pointer;
            if (storage == FloatStorage.F32)
            {
                var memory = DeviceBuffer<float>.Allocate(context, weight.Length, what);
                w = memory;
                pointer = memory.Pointer;
                StreamCopy.Upload(stream, weight, pointer);
            }
            else
            {
                // Converted once here, rounded to nearest even: the GEMMs read half weights from then on.
                var halves = new ushort[weight.Length];
                FloatStorages.ToHalf(weight, halves, storage);
                var memory = DeviceBuffer<ushort>.Allocate(context, weight.Length, what);
                w = memory;
                pointer = memory.Pointer;
                StreamCopy.Upload<ushort>(stream, halves, pointer);
            }
            b = DeviceBuffer<float>.Allocate(context, bias.Length, $"the bias of a Linear layer [{outFeatures}]");
            StreamCopy.Upload(stream, bias, b.Pointer);
            return new CudaLinearWeights(w, pointer, b, outFeatures, inFeatures, precision);
        }
        catch
        {
            w?.Dispose();
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
        if (w.Storage != FloatStorage.F32)
        {
            HalfLinear(x, w, rows, epilogue, y);
            return;
        }
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

    /// <summary>
    /// Row-major out[rows, N] = in[rows, K] · W[N, K]ᵀ in fp32, no bias: column-major outᵀ[N, rows] = W[K, N]ᵀ · inᵀ[K, rows].
    /// tf32 layers take cuBLAS's TF32 compute type (inputs rounded to 10 mantissa bits, fp32 accumulation).
    /// </summary>
    private void Gemm(ulong input, CudaLinearWeights w, int rows, ulong output) =>
        Blas().GemmStridedBatched(CublasOperation.T, CublasOperation.N, w.OutFeatures, rows, w.InFeatures, 1f,
            w.Weight, CudaDataType.R32F, w.InFeatures, (long)w.OutFeatures * w.InFeatures,
            input, CudaDataType.R32F, w.InFeatures, (long)rows * w.InFeatures, 0f,
            output, CudaDataType.R32F, w.OutFeatures, (long)rows * w.OutFeatures, 1,
            w.Precision == Precision.TensorFloat32 ? CublasComputeType.Compute32FFastTF32 : CublasComputeType.Compute32F);

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

        // im2col in the layer's storage, then one GEMM (on tensor cores in half) into fp32; the bias and position
        // embedding are added in fp32 as the rows are assembled into the residual stream.
        ulong unfolded = w.Storage == FloatStorage.F32 ? unfoldedPatches.Get(rows * k) : unfoldedHalfPatches.Get(rows * k);
        Launch("patch_embed.cu", $"patch_unfold_{w.Storage.Suffix()}", GridStride(rows * k), Block, 0,
            new KernelArgs().Add(imagesPtr).Add(batch).Add(imageSize).Add(patchSize).Add(unfolded));
        ulong embedded = gemmOutput.Get(rows * c);
        if (w.Storage == FloatStorage.F32)
            Gemm(unfolded, w, checked((int)rows), embedded);
        else
            HalfGemm(unfolded, w, checked((int)rows), FloatStorage.F32, CublasLtEpilogue.Default, embedded, 0f);
        Launch("patch_embed.cu", "patch_assemble_f32", GridStride((long)batch * tokens * c), Block, 0,
            new KernelArgs().Add(embedded).Add(w.Bias.Pointer).Add(prefixPtr).Add(posPtr).Add(batch).Add(patches).Add(prefixTokens).Add(c).Add(xPtr));
    }

    public void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y)
    {
        Current();
        ulong input = Float(x, (long)rows * channels, nameof(x));
        ulong gamma = Float(weight, channels, nameof(weight));
        ulong beta = Float(bias, channels, nameof(bias));
        var (output, storage) = Activation(y, (long)rows * channels, nameof(y));
        if (rows == 0)
            return;
        // One warp per row, 8 rows per block; statistics in fp32, the output rounded once to its storage.
        Launch("layer_norm.cu", $"layer_norm_{storage.Suffix()}", Blocks(rows, Block / 32), Block, 0,
            new KernelArgs().Add(input).Add(gamma).Add(beta).Add(rows).Add(channels).Add(eps).Add(output));
    }
}
