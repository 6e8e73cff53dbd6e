namespace ToMe.Backends;

/// <summary>
/// A backend that hands every member to <see cref="Inner"/>: the base of decorators that time, check or alter some ops
/// and override only those.
/// </summary>
/// <remarks>
/// Images run one batch at a time (<see cref="ImageConcurrency"/> 1), whatever the inner backend could do: a decorator's
/// overrides then see one op at a time and may keep state without locks. One whose overrides are thread-safe opts in by
/// overriding <see cref="ImageConcurrency"/> and <see cref="ForEachImage"/> with the inner backend's.
/// </remarks>
internal abstract class ForwardingBackend(IBackend inner) : IBackend
{
    protected internal IBackend Inner { get; } = inner;

    public virtual string Name => Inner.Name;
    public virtual string DeviceName => Inner.DeviceName;
    public virtual long MaxBufferElements => Inner.MaxBufferElements;
    public virtual int ImageConcurrency => 1;

    public virtual void ForEachImage(int count, Action<int> body)
    {
        for (int i = 0; i < count; i++)
            body(i);
    }

    public virtual DeviceBuffer AllocateFloat(long length) => Inner.AllocateFloat(length);
    public virtual DeviceBuffer AllocateInt(long length) => Inner.AllocateInt(length);
    public virtual DeviceBuffer AllocateActivation(long length, Precision precision) => Inner.AllocateActivation(length, precision);
    public virtual void Upload(ReadOnlySpan<float> source, DeviceBuffer destination) => Inner.Upload(source, destination);
    public virtual void Upload(ReadOnlySpan<int> source, DeviceBuffer destination) => Inner.Upload(source, destination);
    public virtual void Download(DeviceBuffer source, Span<float> destination) => Inner.Download(source, destination);
    public virtual void Download(DeviceBuffer source, Span<int> destination) => Inner.Download(source, destination);
    public virtual Precision ResolvePrecision(Precision requested) => Inner.ResolvePrecision(requested);

    public virtual ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias,
        Precision precision = Precision.Float32) =>
        Inner.PrepareLinear(weight, outFeatures, inFeatures, bias, precision);

    public virtual void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x) =>
        Inner.PatchEmbed(images, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);

    /// <summary>
    /// Through this decorator's own <see cref="Upload(ReadOnlySpan{float}, DeviceBuffer)"/> and <see cref="PatchEmbed"/>, so
    /// one that overrides either still sees the forward's first step; one that overrides neither may hand the whole step
    /// to the inner backend.
    /// </summary>
    public virtual void EmbedImages(ReadOnlySpan<float> images, DeviceBuffer staging, DeviceBuffer? prefix, DeviceBuffer pos,
        ILinearWeights patch, int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        Upload(images, staging);
        PatchEmbed(staging, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
    }

    public virtual void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y) =>
        Inner.LayerNorm(x, weight, bias, rows, channels, eps, y);

    public virtual void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y) =>
        Inner.Linear(x, weights, rows, epilogue, y);

    public virtual void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y) =>
        Inner.Mlp(x, fc1, fc2, rows, hidden, y);

    public virtual void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention) =>
        Inner.Attention(qkv, size, batch, tokens, heads, headDim, output, keyMean, classAttention);

    public virtual void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens,
        DeviceBuffer best, DeviceBuffer bestIndex) =>
        Inner.BipartiteMatch(metric, batch, tokens, dim, prefixTokens, best, bestIndex);

    public virtual void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order) =>
        Inner.SelectTopR(best, batch, setA, r, keepUnmergedInOrder, order);

    public virtual void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex,
        DeviceBuffer? weight, int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut) =>
        Inner.Merge(x, size, groups, order, bestIndex, weight, batch, tokens, channels, originalTokens, r, prefixTokens,
            xOut, sizeOut, groupsOut);

    public virtual void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim,
        DeviceBuffer score) =>
        Inner.ClassImportance(qkv, classAttention, batch, tokens, heads, headDim, score);

    public virtual void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs,
        DeviceBuffer dest) =>
        Inner.AssignToMostSimilar(metric, role, batch, tokens, dim, protectedOutputs, dest);

    public virtual void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth,
        float threshold, DeviceBuffer dest, DeviceBuffer counts) =>
        Inner.GridComponents(metric, batch, tokens, dim, prefixTokens, gridHeight, gridWidth, threshold, dest, counts);

    public virtual void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest,
        int batch, int tokens, int channels, int originalTokens, int newTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut) =>
        Inner.MergeAssigned(x, size, groups, dest, batch, tokens, channels, originalTokens, newTokens, xOut, sizeOut, groupsOut);

    public virtual void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled) =>
        Inner.GatherPrefix(x, batch, tokens, channels, count, pooled);

    public virtual void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled) =>
        Inner.WeightedMeanPool(x, size, batch, tokens, channels, skip, pooled);

    /// <summary>Disposes the inner backend; a decorator over a backend that belongs to its caller overrides this.</summary>
    public virtual void Dispose() => Inner.Dispose();
}
