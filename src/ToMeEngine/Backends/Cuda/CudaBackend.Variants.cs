namespace ToMe.Backends.Cuda;

// The merge strategies besides ToMe (kth, random, ToMato, ToMeCIS) have CPU implementations only so far; on this backend
// they fail with a message naming the strategy instead of computing something else.
internal sealed partial class CudaBackend
{
    private static NotSupportedException VariantNotOnGpu(string what) =>
        new($"{what} is not implemented on the CUDA backend yet; use --backend cpu for this merge strategy");

    public void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score) =>
        throw VariantNotOnGpu("class-importance scores (cis)");

    public void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs, DeviceBuffer dest) =>
        throw VariantNotOnGpu("kth/random assignment");

    public void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth,
        float threshold, DeviceBuffer dest, DeviceBuffer counts) =>
        throw VariantNotOnGpu("grid components (tomato)");

    public void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest,
        int batch, int tokens, int channels, int originalTokens, int newTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut) =>
        throw VariantNotOnGpu("assigned merging (kth/random/tomato)");
}
