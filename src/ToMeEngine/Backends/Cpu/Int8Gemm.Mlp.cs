using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

internal static unsafe partial class Int8Gemm
{
    // A worker's fc1 output rows (float32, after GELU) and their quantized copy, reused across calls.
    [ThreadStatic] private static AlignedArray<float>? t_hidden;
    [ThreadStatic] private static byte[]? t_hiddenQuantized;

    // fc1's output rows of one task stay within this many bytes, so they are still in L2 when quantized and read by fc2.
    private const int HiddenBlockBytes = 384 << 10;

    /// <summary>
    /// y += fc2(GELU(fc1(x))), timm's MLP with its residual add, both layers int8. Each task runs fc1 on a block of rows,
    /// quantizes those rows of the hidden activation while they are in cache and runs fc2 on them: the [m, hidden] float32
    /// activation is never written to memory, which on wide MLPs costs more than fc2's arithmetic saves. Every output is
    /// bit-identical to the two layers run one after the other.
    /// </summary>
    // x: [m, fc1.K] with row stride lda; y: [m, fc2.N] with row stride ldy
    [MethodImpl(Jit.Hot)]
    public static void Mlp(ReadOnlySpan<float> x, int lda, int m, Int8Weight fc1, Int8Weight fc2, Span<float> y, int ldy,
        int maxThreads, Int8Path path)
    {
        ArgumentNullException.ThrowIfNull(fc1);
        ArgumentNullException.ThrowIfNull(fc2);
        if (fc2.K != fc1.N)
            throw new ArgumentException($"fc2 takes {fc2.K} inputs, fc1 gives {fc1.N}");
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        if (!IsSupported(path))
            throw new PlatformNotSupportedException($"{path} kernels are not supported on this machine");
        if (lda < fc1.K || ldy < fc2.N)
            throw new ArgumentOutOfRangeException(lda < fc1.K ? nameof(lda) : nameof(ldy), "row stride shorter than the row");
        if (m == 0)
            return;
        if (x.Length < (long)(m - 1) * lda + fc1.K)
            throw new ArgumentException($"x holds {x.Length} floats, {(long)(m - 1) * lda + fc1.K} needed", nameof(x));
        if (y.Length < (long)(m - 1) * ldy + fc2.N)
            throw new ArgumentException($"y holds {y.Length} floats, {(long)(m - 1) * ldy + fc2.N} needed", nameof(y));

        int threads = maxThreads == 0 ? Environment.ProcessorCount : maxThreads;
        int hidden = fc1.N;
        // Whole micro-panels of every kernel family (MR = 2, 4, 6 or 8), small enough for the cache and for a few tasks per thread.
        int block = Math.Clamp(HiddenBlockBytes / (4 * hidden) / 24 * 24, 24, McRows);
        block = Math.Min(block, Math.Max(24, (m + GemmTiles.TasksPerThread * threads - 1) / (GemmTiles.TasksPerThread * threads) + 23) / 24 * 24);
        int blocks = (m + block - 1) / block;
        // The hidden rows one cache line longer than they need be: at ViT-B's 3072 floats (12 KiB, a multiple of 4 KiB) every
        // row would start in the same L1 set and in one of 16 L2 sets, and a tile's rows written by fc1's epilogue would
        // evict each other.
        int ldh = hidden + Nr;

        var activations = new QuantizedRows(m, fc1.K, path, ref t_quantized);
        fixed (float* px = x, py = y)
        {
            float* input = px, output = py;
            ForRows(m, maxThreads, [MethodImpl(Jit.Hot)] (start, end) => activations.Quantize(input, lda, start, end));
            var run = [MethodImpl(Jit.Hot)] (int b) =>
            {
                int r0 = b * block, rows = Math.Min(block, m - r0);
                var h = AlignedArray<float>.Ensure(ref t_hidden, block * ldh);
                var up = new Job(activations, fc1, path) { C = h.Pointer - (long)r0 * ldh, Ldc = ldh, Epilogue = GemmEpilogue.BiasGelu };
                up.RunTile(r0, r0 + rows, 0, fc1.Panels);
                var quantized = new QuantizedRows(rows, hidden, path, ref t_hiddenQuantized);
                quantized.Quantize(h.Pointer, ldh, 0, rows);
                var down = new Job(quantized, fc2, path) { C = output + (long)r0 * ldy, Ldc = ldy, Epilogue = GemmEpilogue.Accumulate };
                down.RunTile(0, rows, 0, fc2.Panels);
                GC.KeepAlive(h);
            };
            long work = (long)m * hidden * (fc1.K + fc2.N);
            if (threads <= 1 || blocks == 1 || work < ParallelThreshold)
            {
                for (int b = 0; b < blocks; b++)
                    run(b);
            }
            else
            {
                ThreadTeam.Get(threads).For(blocks, run);
            }
        }
        GC.KeepAlive(fc1);
        GC.KeepAlive(fc2);
    }
}
