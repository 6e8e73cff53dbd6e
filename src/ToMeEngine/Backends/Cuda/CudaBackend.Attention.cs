using ToMe.Backends.Cuda.Kernels;

namespace ToMe.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <summary>
    /// Fused attention: <see cref="AttentionKernels.Select"/> is the one place that picks the kernel (flash attention on
    /// tensor cores for half storage where the GPU has them, attention.cu on CUDA cores otherwise); its launches also
    /// write ToMe's metric and, when asked, the class row, all in fp32.
    /// </summary>
    public void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
    {
        Current();
        long rows = (long)batch * tokens;
        int c = heads * headDim;
        var (qkvPtr, storage) = Activation(qkv, rows * 3 * c, nameof(qkv));
        var (outPtr, outStorage) = Activation(output, rows * c, nameof(output));
        if (outStorage != storage)
            throw new ArgumentException($"qkv is {storage.Suffix()} and the attention output {outStorage.Suffix()}: one storage type for both");
        var variant = AttentionKernels.Select(context.Info.ComputeMajor * 10 + context.Info.ComputeMinor, storage, headDim);
        ulong sizePtr = OptionalFloat(size, rows, nameof(size));
        ulong keyMeanPtr = Float(keyMean, rows * headDim, nameof(keyMean));
        ulong classPtr = OptionalFloat(classAttention, rows, nameof(classAttention));
        if (rows == 0)
            return;
        float scale = (float)(1.0 / Math.Sqrt(headDim));   // the CPU's scale, bit for bit
        ulong scratch = classAttention is null ? 0UL : classStats.Get(variant.ClassScratchFloats(batch, tokens, heads));
        var call = new AttentionCall(qkvPtr, sizePtr, batch, tokens, heads, headDim, scale, outPtr, keyMeanPtr, classPtr, scratch);
        foreach (var launch in variant.Launches(call))
            Launch(launch.File, launch.EntryPoint, launch.Grid, launch.Block, 0, launch.Args);
    }
}
