namespace ToMe.Backends.Cpu;

/// <summary>
/// A timm Linear weight ([out_features, in_features] row-major) repacked once for <see cref="CpuGemm"/>.
/// </summary>
/// <remarks>
/// Layout: ⌈N/32⌉ panels of 32 output columns; panel j holds, for every k in order, the 32 values
/// W[32j + c, k] contiguously, zero-padded past N. A K-block of a panel is therefore one contiguous run that the
/// micro-kernel streams linearly, and the layout does not depend on the cache blocking or on the SIMD width.
/// </remarks>
internal sealed unsafe class PackedWeight
{
    public const int PanelWidth = 32;

    private readonly AlignedArray<float> _buffer;

    private PackedWeight(int n, int k, AlignedArray<float> buffer)
    {
        N = n;
        K = k;
        _buffer = buffer;
    }

    /// <summary>Output features (rows of the timm weight).</summary>
    public int N { get; }

    /// <summary>Input features (columns of the timm weight).</summary>
    public int K { get; }

    public int Panels => (N + PanelWidth - 1) / PanelWidth;

    // Valid only while this object is reachable: callers holding the pointer must GC.KeepAlive the weight.
    internal float* Data => _buffer.Pointer;

    // w: [n, k] row-major (timm / PyTorch nn.Linear.weight)
    public static PackedWeight Pack(ReadOnlySpan<float> w, int n, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (w.Length < (long)n * k)
        {
            throw new ArgumentException($"weight holds {w.Length} floats, [{n}, {k}] needs {(long)n * k}", nameof(w));
        }
        int panels = (n + PanelWidth - 1) / PanelWidth;
        long total = (long)panels * PanelWidth * k;
        if (total > int.MaxValue - 64)
        {
            throw new ArgumentException($"weight [{n}, {k}] is too large to pack", nameof(w));
        }
        var buffer = new AlignedArray<float>(Math.Max(1, (int)total));
        fixed (float* src = w)
        {
            Packing.PackPanels(src, k, transposed: true, n, k, buffer.Pointer);
        }
        return new PackedWeight(n, k, buffer);
    }
}
