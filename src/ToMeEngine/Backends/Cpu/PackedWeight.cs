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

    private readonly AlignedBuffer _buffer;

    private PackedWeight(int n, int k, AlignedBuffer buffer)
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
        var buffer = new AlignedBuffer(Math.Max(1, (int)total));
        fixed (float* src = w)
        {
            PackPanels(src, k, transposed: true, n, k, buffer.Pointer);
        }
        return new PackedWeight(n, k, buffer);
    }

    /// <summary>
    /// Packs a K×N right-hand operand into 32-wide panels. <paramref name="transposed"/>: the source is stored
    /// [n, k] (element (k, j) at src[j·ld + k]); otherwise [k, n] (element (k, j) at src[k·ld + j]).
    /// The destination must be zeroed past n or is overwritten with zeros there.
    /// </summary>
    internal static void PackPanels(float* src, int ld, bool transposed, int n, int k, float* dst)
    {
        for (int j0 = 0; j0 < n; j0 += PanelWidth)
        {
            int cols = Math.Min(PanelWidth, n - j0);
            float* panel = dst + (long)j0 * k;
            if (transposed)
            {
                // Walk each source row once (sequential reads) and scatter with stride 32 into the panel.
                for (int c = 0; c < cols; c++)
                {
                    float* row = src + (long)(j0 + c) * ld;
                    for (int p = 0; p < k; p++)
                    {
                        panel[p * PanelWidth + c] = row[p];
                    }
                }
                for (int c = cols; c < PanelWidth; c++)
                {
                    for (int p = 0; p < k; p++)
                    {
                        panel[p * PanelWidth + c] = 0f;
                    }
                }
            }
            else
            {
                for (int p = 0; p < k; p++)
                {
                    var from = new ReadOnlySpan<float>(src + (long)p * ld + j0, cols);
                    var to = new Span<float>(panel + p * PanelWidth, PanelWidth);
                    from.CopyTo(to);
                    to[cols..].Clear();
                }
            }
        }
    }
}
