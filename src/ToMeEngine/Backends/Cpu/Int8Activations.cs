using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ToMe.Backends.Cpu;

/// <summary>
/// A's rows quantized: uint8 (or the same values as int16 for the VPMADDWD kernels), K padded with zeros to whole
/// k-quads and M to whole micro-panels, so every kernel reads full tiles; per row its scale and zero point.
/// </summary>
internal sealed unsafe class QuantizedRows
{
    public readonly int M, K, Stride; // Stride: elements per row, a multiple of 4
    public readonly bool Wide;
    public readonly byte* Data;
    public readonly float[] Scale;
    public readonly int[] Zero;
    private readonly byte[] storage; // pinned: Data points into it

    /// <param name="m">Rows.</param>
    /// <param name="k">Values per row.</param>
    /// <param name="path">The kernel family that will read them (its MR and whether it wants int16).</param>
    /// <param name="buffer">A thread's reusable storage for them, grown when too small.</param>
    public QuantizedRows(int m, int k, Int8Path path, ref byte[]? buffer)
    {
        M = m;
        K = k;
        Stride = (k + 3) / 4 * 4;
        Wide = path is Int8Path.Avx512BW or Int8Path.Avx2;
        int mr = Int8Gemm.MicroRows(path);
        int rows = (m + mr - 1) / mr * mr;
        long bytes = (long)rows * Stride * (Wide ? 2 : 1);
        if (bytes > int.MaxValue - 64)
            throw new ArgumentException($"activations [{m}, {k}] are too large to quantize in one call");
        if (buffer is null || buffer.Length < bytes + 64)
            buffer = GC.AllocateArray<byte>((int)Math.Max(bytes + 64, (buffer?.Length ?? 0) * 3 / 2), pinned: true);
        storage = buffer;
        byte* first = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        Data = first + ((64 - (int)((nuint)first & 63)) & 63);
        // Padding rows and columns must be zeros (the kernels multiply them; their products must add nothing).
        new Span<byte>(Data + (long)m * Stride * (Wide ? 2 : 1), (int)(bytes - (long)m * Stride * (Wide ? 2 : 1))).Clear();
        // The kernels' epilogue reads the padding rows' scale and zero point too (their results are discarded).
        Scale = new float[rows];
        Zero = new int[rows];
    }

    public byte* Row8(int r) => Data + (long)r * Stride;

    public short* Row16(int r) => (short*)Data + (long)r * Stride;

    [MethodImpl(Jit.Hot)]
    public void Quantize(float* a, int lda, int start, int end)
    {
        for (int r = start; r < end; r++)
        {
            var (scale, zero) = Int8Quantizer.Range(new ReadOnlySpan<float>(a + (long)r * lda, K));
            Scale[r] = scale;
            Zero[r] = zero;
            if (Wide)
                Int8Quantizer.Quantize(new ReadOnlySpan<float>(a + (long)r * lda, K), scale, zero, new Span<short>(Row16(r), Stride));
            else
                Int8Quantizer.Quantize(new ReadOnlySpan<float>(a + (long)r * lda, K), scale, zero, new Span<byte>(Row8(r), Stride));
        }
    }

    // Already-quantized uint8 rows [M, K] (tests): zero points 0, scales 1.
    public void Load(ReadOnlySpan<byte> values)
    {
        for (int r = 0; r < M; r++)
        {
            var src = values.Slice(r * K, K);
            Scale[r] = 1f;
            if (Wide)
            {
                var dst = new Span<short>(Row16(r), Stride);
                for (int i = 0; i < K; i++)
                    dst[i] = src[i];
                dst[K..].Clear();
            }
            else
            {
                var dst = new Span<byte>(Row8(r), Stride);
                src.CopyTo(dst);
                dst[K..].Clear();
            }
        }
    }
}
