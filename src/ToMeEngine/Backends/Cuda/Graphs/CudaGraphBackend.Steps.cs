using System.Runtime.InteropServices;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda.Graphs;

// Every op and transfer of a forward, as a step: noted in the warm-up, checked and captured or skipped after it. A step's
// fingerprint is its kind, buffers (by identity) and scalars: the same key must issue the same steps.
internal sealed unsafe partial class CudaGraphBackend
{
    private enum Kind
    {
        Upload = 1, Download, PatchEmbed, LayerNorm, Linear, Mlp, Attention, BipartiteMatch, SelectTopR, Merge, ClassImportance,
        AssignToMostSimilar, GridComponents, MergeAssigned, GatherPrefix, WeightedMeanPool,
    }

    public override void Upload(ReadOnlySpan<float> source, DeviceBuffer destination) => Upload<float>(source, destination);

    public override void Upload(ReadOnlySpan<int> source, DeviceBuffer destination) => Upload<int>(source, destination);

    public override void Download(DeviceBuffer source, Span<float> destination) => Download<float>(source, destination);

    public override void Download(DeviceBuffer source, Span<int> destination) => Download<int>(source, destination);

    private void Upload<T>(ReadOnlySpan<T> source, DeviceBuffer destination) where T : unmanaged
    {
        if (!inForward)
        {
            // Weights and other loads: straight to the device.
            InnerUpload(source, destination);
            return;
        }
        var bytes = MemoryMarshal.AsBytes(source);
        Fits(destination, source.Length, nameof(destination));
        int fingerprint = HashCode.Combine(Kind.Upload, destination, bytes.Length);
        if (!opSeen)
        {
            // The images: through the stager, outside any graph; then the next batch's, while this one runs.
            Step(fingerprint, beginsCapture: false);
            stager.Consume(bytes, Address(destination));
            if (nextImages != 0 && mode != Mode.Capture)
                stager.Stage(new ReadOnlySpan<byte>((void*)nextImages, nextLength * sizeof(float)));
            return;
        }
        Step(fingerprint);
        switch (mode)
        {
            case Mode.Direct or Mode.Record:
                Transfer(bytes.Length);
                InnerUpload(source, destination);
                return;
            case Mode.Capture:
            {
                nint slot = Transfer(bytes.Length);
                bytes.CopyTo(new Span<byte>((void*)slot, bytes.Length));
                Cu.Check(CuDriver.cuMemcpyHtoDAsync_v2(Address(destination), (void*)slot, (nuint)bytes.Length, cuda.Stream.Handle));
                return;
            }
            default:
            {
                if (launched)
                    throw new GraphMismatchException("an upload follows a download");
                nint slot = Transfer(bytes.Length);
                bytes.CopyTo(new Span<byte>((void*)slot, bytes.Length));
                return;
            }
        }
    }

    private void Download<T>(DeviceBuffer source, Span<T> destination) where T : unmanaged
    {
        if (!inForward)
        {
            InnerDownload(source, destination);
            return;
        }
        var bytes = MemoryMarshal.AsBytes(destination);
        Fits(source, destination.Length, nameof(source));
        opSeen = true;
        Step(HashCode.Combine(Kind.Download, source, bytes.Length));
        switch (mode)
        {
            case Mode.Direct or Mode.Record:
                Transfer(bytes.Length);
                InnerDownload(source, destination);
                return;
            case Mode.Capture:
                // Captured into the graph; the values arrive when it is replayed.
                Cu.Check(CuDriver.cuMemcpyDtoHAsync_v2((void*)Transfer(bytes.Length), Address(source), (nuint)bytes.Length, cuda.Stream.Handle));
                return;
            default:
            {
                nint slot = Transfer(bytes.Length);
                Launch();
                new ReadOnlySpan<byte>((void*)slot, bytes.Length).CopyTo(bytes);
                return;
            }
        }
    }

    private void InnerUpload<T>(ReadOnlySpan<T> source, DeviceBuffer destination) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            Inner.Upload(MemoryMarshal.Cast<T, float>(source), destination);
        else
            Inner.Upload(MemoryMarshal.Cast<T, int>(source), destination);
    }

    private void InnerDownload<T>(DeviceBuffer source, Span<T> destination) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            Inner.Download(source, MemoryMarshal.Cast<T, float>(destination));
        else
            Inner.Download(source, MemoryMarshal.Cast<T, int>(destination));
    }

    private static void Fits(DeviceBuffer buffer, long count, string name)
    {
        if (count > buffer.Length)
            throw new ArgumentException($"{name} holds {buffer.Length} elements, the copy needs {count}");
    }

    private bool Op(Kind kind, int arguments, int more = 0)
    {
        opSeen = true;
        return Step(HashCode.Combine(kind, arguments, more));
    }

    public override void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        if (Op(Kind.PatchEmbed, HashCode.Combine(images, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens), HashCode.Combine(x)))
            Inner.PatchEmbed(images, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
    }

    public override void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y)
    {
        if (Op(Kind.LayerNorm, HashCode.Combine(x, weight, bias, rows, channels, eps, y)))
            Inner.LayerNorm(x, weight, bias, rows, channels, eps, y);
    }

    public override void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y)
    {
        if (Op(Kind.Linear, HashCode.Combine(x, weights, rows, epilogue, y)))
            Inner.Linear(x, weights, rows, epilogue, y);
    }

    public override void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y)
    {
        if (Op(Kind.Mlp, HashCode.Combine(x, fc1, fc2, rows, hidden, y)))
            Inner.Mlp(x, fc1, fc2, rows, hidden, y);
    }

    public override void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
    {
        if (Op(Kind.Attention, HashCode.Combine(qkv, size, batch, tokens, heads, headDim, output, keyMean), HashCode.Combine(classAttention)))
            Inner.Attention(qkv, size, batch, tokens, heads, headDim, output, keyMean, classAttention);
    }

    public override void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, DeviceBuffer best, DeviceBuffer bestIndex)
    {
        if (Op(Kind.BipartiteMatch, HashCode.Combine(metric, batch, tokens, dim, prefixTokens, best, bestIndex)))
            Inner.BipartiteMatch(metric, batch, tokens, dim, prefixTokens, best, bestIndex);
    }

    public override void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order)
    {
        if (Op(Kind.SelectTopR, HashCode.Combine(best, batch, setA, r, keepUnmergedInOrder, order)))
            Inner.SelectTopR(best, batch, setA, r, keepUnmergedInOrder, order);
    }

    public override void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex,
        DeviceBuffer? weight, int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
    {
        if (Op(Kind.Merge, HashCode.Combine(x, size, groups, order, bestIndex, weight, batch, tokens),
                HashCode.Combine(channels, originalTokens, r, prefixTokens, xOut, sizeOut, groupsOut)))
            Inner.Merge(x, size, groups, order, bestIndex, weight, batch, tokens, channels, originalTokens, r, prefixTokens, xOut, sizeOut, groupsOut);
    }

    public override void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score)
    {
        if (Op(Kind.ClassImportance, HashCode.Combine(qkv, classAttention, batch, tokens, heads, headDim, score)))
            Inner.ClassImportance(qkv, classAttention, batch, tokens, heads, headDim, score);
    }

    public override void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs, DeviceBuffer dest)
    {
        if (Op(Kind.AssignToMostSimilar, HashCode.Combine(metric, role, batch, tokens, dim, protectedOutputs, dest)))
            Inner.AssignToMostSimilar(metric, role, batch, tokens, dim, protectedOutputs, dest);
    }

    public override void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth,
        float threshold, DeviceBuffer dest, DeviceBuffer counts)
    {
        if (Op(Kind.GridComponents, HashCode.Combine(metric, batch, tokens, dim, prefixTokens, gridHeight, gridWidth, threshold), HashCode.Combine(dest, counts)))
            Inner.GridComponents(metric, batch, tokens, dim, prefixTokens, gridHeight, gridWidth, threshold, dest, counts);
    }

    public override void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest,
        int batch, int tokens, int channels, int originalTokens, int newTokens, DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut)
    {
        if (Op(Kind.MergeAssigned, HashCode.Combine(x, size, groups, dest, batch, tokens, channels, originalTokens),
                HashCode.Combine(newTokens, xOut, sizeOut, groupsOut)))
            Inner.MergeAssigned(x, size, groups, dest, batch, tokens, channels, originalTokens, newTokens, xOut, sizeOut, groupsOut);
    }

    public override void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled)
    {
        if (Op(Kind.GatherPrefix, HashCode.Combine(x, batch, tokens, channels, count, pooled)))
            Inner.GatherPrefix(x, batch, tokens, channels, count, pooled);
    }

    public override void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled)
    {
        if (Op(Kind.WeightedMeanPool, HashCode.Combine(x, size, batch, tokens, channels, skip, pooled)))
            Inner.WeightedMeanPool(x, size, batch, tokens, channels, skip, pooled);
    }
}
