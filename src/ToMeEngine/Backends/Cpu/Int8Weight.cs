using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ToMe.Backends.Cpu;

/// <summary>
/// A timm Linear weight ([out_features, in_features] row-major) quantized once for <see cref="Int8Gemm"/>: symmetric int8
/// per output channel, packed into panels the micro-kernels stream.
/// </summary>
/// <remarks>
/// Quantization: scale[n] = max_k |W[n, k]| / 127, q[n, k] = round(W[n, k] / scale[n]) in [−127, 127]. Symmetric, so the
/// weights need no zero point; −128 is never used, which keeps the u8·s8 products of the int16 fallbacks' pairs in range.
/// Layout: ⌈N/16⌉ panels of 16 output columns; a panel holds, for each group of four k (k padded with zeros to a multiple
/// of 4), the 16 columns' four consecutive weights: [⌈K/4⌉][16][4] bytes, one 64-byte line per k-quad. That is the operand
/// order of VPDPBUSD (four u8·s8 products summed per int32 lane) and, sign-extended, of VPMADDWD.
/// Next to it: the per-column scales, Σ_k q[n, k] (for the activations' zero point) and the bias, padded to the panels.
/// </remarks>
internal sealed unsafe class Int8Weight
{
    public const int PanelWidth = 16;

    private readonly sbyte[] storage; // pinned; the panels start at the first 64-byte boundary
    private readonly sbyte* data;

    private Int8Weight(int n, int k)
    {
        N = n;
        K = k;
        KQuads = (k + 3) / 4;
        Panels = (n + PanelWidth - 1) / PanelWidth;
        long bytes = (long)Panels * KQuads * PanelWidth * 4;
        if (bytes > int.MaxValue)
            throw new ArgumentException($"weight [{n}, {k}] is too large to pack");
        storage = GC.AllocateArray<sbyte>((int)bytes + 64, pinned: true);
        sbyte* first = (sbyte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(storage));
        data = first + ((64 - (int)((nuint)first & 63)) & 63);
        Scale = new float[Panels * PanelWidth];
        ColumnSum = new int[Panels * PanelWidth];
        Bias = new float[Panels * PanelWidth];
    }

    /// <summary>Output features (rows of the timm weight).</summary>
    public int N { get; }

    /// <summary>Input features (columns of the timm weight).</summary>
    public int K { get; }

    /// <summary>⌈K/4⌉: the k-quads of every panel.</summary>
    public int KQuads { get; }

    public int Panels { get; }

    /// <summary>Per output column: the dequantization scale, Σ_k q, and the bias; zero past N.</summary>
    public float[] Scale { get; }

    public int[] ColumnSum { get; }

    public float[] Bias { get; }

    /// <summary>Panel p's first k-quad: [KQuads][16][4] bytes. Valid while this object is reachable (callers GC.KeepAlive it).</summary>
    internal sbyte* Panel(int p) => data + (long)p * KQuads * PanelWidth * 4;

    /// <summary>Quantizes and packs w: [n, k] row-major (timm / PyTorch nn.Linear.weight); bias: [n] or empty (zeros).</summary>
    public static Int8Weight Quantize(ReadOnlySpan<float> w, int n, int k, ReadOnlySpan<float> bias)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (w.Length < (long)n * k)
            throw new ArgumentException($"weight holds {w.Length} floats, [{n}, {k}] needs {(long)n * k}", nameof(w));
        if (!bias.IsEmpty && bias.Length < n)
            throw new ArgumentException($"bias holds {bias.Length} floats, {n} needed", nameof(bias));
        var packed = new Int8Weight(n, k);
        var q = new sbyte[k];
        for (int col = 0; col < n; col++)
        {
            var row = w.Slice(col * k, k);
            float scale = QuantizeRow(row, q);
            packed.Scale[col] = scale;
            packed.Bias[col] = bias.IsEmpty ? 0f : bias[col];
            int sum = 0;
            sbyte* panel = packed.Panel(col / PanelWidth) + (col % PanelWidth) * 4;
            for (int i = 0; i < k; i++)
            {
                sum += q[i];
                panel[(i >> 2) * PanelWidth * 4 + (i & 3)] = q[i];
            }
            packed.ColumnSum[col] = sum;
        }
        return packed;
    }

    /// <summary>Symmetric per-row quantization to [−127, 127]; returns the scale (1 for an all-zero row).</summary>
    internal static float QuantizeRow(ReadOnlySpan<float> row, Span<sbyte> q)
    {
        float max = 0f;
        foreach (var v in row)
        {
            if (!float.IsFinite(v))
                throw new ArgumentException("weight holds a non-finite value; it cannot be quantized to int8", nameof(row));
            max = MathF.Max(max, MathF.Abs(v));
        }
        if (max == 0f)
        {
            q.Clear();
            return 1f;
        }
        float scale = max / 127f;
        for (int i = 0; i < row.Length; i++)
            q[i] = (sbyte)Math.Clamp((int)MathF.Round(row[i] / scale), -127, 127);
        return scale;
    }
}
