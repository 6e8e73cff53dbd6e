using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

// Buffers hand their aligned storage to the ops; disposing one frees it (a workspace disposes its buffers).
internal sealed class CpuFloatBuffer(int length) : DeviceBuffer
{
    public readonly AlignedArray<float> Data = new(length);

    public override long Length => Data.Length;

    public override void Dispose() => Data.Dispose();
}

internal sealed class CpuIntBuffer(int length) : DeviceBuffer
{
    public readonly AlignedArray<int> Data = new(length);

    public override long Length => Data.Length;

    public override void Dispose() => Data.Dispose();
}

/// <summary>
/// The float32 reference backend: SIMD and multi-threaded, deterministic (a result never depends on the batch it is in
/// or on the thread count). Every CUDA kernel is tested against these ops.
/// </summary>
internal sealed partial class CpuBackend : IBackend
{
    /// <param name="maxThreads">Worker threads for one op; 0 uses every core.</param>
    /// <param name="int8Path">The integer kernels of int8 Linear layers (tests force each one); default the fastest here.</param>
    public CpuBackend(int maxThreads = 0, Int8Path? int8Path = null)
    {
        MaxThreads = maxThreads > 0 ? maxThreads : Environment.ProcessorCount;
        Team = ThreadTeam.Get(MaxThreads);
        // One set per image running at once (ForEachImage), and one for a batch that runs as a whole.
        patchScratch = new(MaxThreads + 1);
        matchScratch = new(MaxThreads + 1);
        Int8Path = int8Path ?? Int8Gemm.BestPath;
        if (!Int8Gemm.IsSupported(Int8Path))
            throw new PlatformNotSupportedException($"{Int8Path} int8 kernels are not supported on this machine");
    }

    public string Name => "cpu";

    public string DeviceName => $"{ProcessorName.Value} ({MaxThreads} {(MaxThreads == 1 ? "thread" : "threads")}, {InstructionSet})";

    // Linux names the processor in /proc/cpuinfo, Windows in PROCESSOR_IDENTIFIER; elsewhere the architecture stands in.
    private static readonly Lazy<string> ProcessorName = new(() =>
    {
        try
        {
            if (OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int colon and > 0)
                        return line[(colon + 1)..].Trim();
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return Environment.GetEnvironmentVariable("PROCESSOR_IDENTIFIER") is { Length: > 0 } named
            ? named : $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} CPU";
    });

    // The widest vector instructions the kernels use here.
    private static string InstructionSet =>
        System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "AVX-512"
        : System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "AVX2"
        : System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "NEON"
        : "no SIMD";

    public int MaxThreads { get; }

    public Int8Path Int8Path { get; }

    /// <summary>Buffers are .NET arrays (padded by one cache line for alignment), and every op indexes them with int.</summary>
    public long MaxBufferElements => Array.MaxLength - AlignedArray<float>.Alignment / sizeof(float);

    internal ThreadTeam Team { get; }

    /// <summary>One image per thread of the team.</summary>
    public int ImageConcurrency => MaxThreads;

    [MethodImpl(Jit.Hot)]
    public void ForEachImage(int count, Action<int> body)
    {
        try
        {
            Team.For(count, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
    }

    public DeviceBuffer AllocateFloat(long length) => new CpuFloatBuffer(ArrayLength(length));

    public DeviceBuffer AllocateInt(long length) => new CpuIntBuffer(ArrayLength(length));

    private int ArrayLength(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > MaxBufferElements)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"the CPU backend's buffers are .NET arrays of at most {MaxBufferElements} elements");
        return (int)length;
    }

    public void Upload(ReadOnlySpan<float> source, DeviceBuffer destination) => source.CopyTo(F(destination));

    public void Upload(ReadOnlySpan<int> source, DeviceBuffer destination) => source.CopyTo(I(destination));

    public void Download(DeviceBuffer source, Span<float> destination) => F(source).AsSpan(0, destination.Length).CopyTo(destination);

    public void Download(DeviceBuffer source, Span<int> destination) => I(source).AsSpan(0, destination.Length).CopyTo(destination);

    internal static AlignedArray<float> F(DeviceBuffer buffer) => ((CpuFloatBuffer)buffer).Data;

    internal static AlignedArray<int> I(DeviceBuffer buffer) => ((CpuIntBuffer)buffer).Data;

    /// <summary>Runs body(start, end) over [0, count) in contiguous chunks of at least minChunk, a few per thread.</summary>
    internal void For(int count, int minChunk, Action<int, int> body) => Team.For(count, minChunk, body, chunksPerThread: 4);

    // The unfolded patches of PatchEmbed, kept for the next calls (taken while in use, so concurrent calls on one backend
    // each get their own).
    private readonly ScratchSlots<float[]> patchScratch;

    [MethodImpl(Jit.Hot)]
    public void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        var img = F(images);
        CheckImages(img.Length, batch, imageSize);
        unsafe
        {
            Embed(img.Pointer, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
        }
        GC.KeepAlive(img);
    }

    /// <summary>The patches are unfolded from the caller's images where they lie: no copy into staging first.</summary>
    [MethodImpl(Jit.Hot)]
    public void EmbedImages(ReadOnlySpan<float> images, DeviceBuffer staging, DeviceBuffer? prefix, DeviceBuffer pos,
        ILinearWeights patch, int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        CheckImages(images.Length, batch, imageSize);
        unsafe
        {
            fixed (float* img = images)
                Embed(img, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
        }
    }

    private static void CheckImages(long length, int batch, int imageSize)
    {
        if (length < (long)batch * 3 * imageSize * imageSize)
            throw new ArgumentException($"images hold {length} floats, [{batch}, 3, {imageSize}, {imageSize}] needed", "images");
    }

    // img: [batch, 3, S, S], pinned by the caller
    [MethodImpl(Jit.Hot)]
    private unsafe void Embed(float* img, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        int grid = imageSize / patchSize, patches = grid * grid, c = patch.OutFeatures, k = 3 * patchSize * patchSize;
        int tokens = prefixTokens + patches;
        nint source = (nint)img;
        // Unfold each patch into a row [3·P·P] in the conv weight's (channel, y, x) order, at the row of its token, so the
        // conv becomes one GEMM straight into x; the prefix rows are zeros whose outputs are then replaced.
        var unfolded = patchScratch.Take();
        if (unfolded is null || unfolded.Length < batch * tokens * k)
            unfolded = new float[batch * tokens * k];
        // One task per row of patches: each of its 3·P image rows is read once, front to back, and its P-float pieces go
        // to the grid patches' rows (one pass over the image in memory order, rather than 3·P scattered reads per patch).
        For(batch * grid, 1, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            var pixels = (float*)source;
            for (int task = start; task < end; task++)
            {
                int b = task / grid, py = task % grid;
                if (py == 0)
                    unfolded.AsSpan(b * tokens * k, prefixTokens * k).Clear();
                var first = unfolded.AsSpan((b * tokens + prefixTokens + py * grid) * k, grid * k);
                for (int ch = 0; ch < 3; ch++)
                    for (int y = 0; y < patchSize; y++)
                    {
                        var line = new ReadOnlySpan<float>(pixels + (((long)b * 3 + ch) * imageSize + py * patchSize + y) * imageSize, grid * patchSize);
                        int at = (ch * patchSize + y) * patchSize;
                        for (int px = 0; px < grid; px++)
                            line.Slice(px * patchSize, patchSize).CopyTo(first.Slice(px * k + at, patchSize));
                    }
            }
        });
        var output = F(x);
        LinearRows(unfolded, patch, batch * tokens, LinearEpilogue.Bias, output);
        patchScratch.Return(unfolded);
        var posData = F(pos);
        var prefixData = prefix is null ? null : F(prefix);
        For(batch, 1, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            for (int b = start; b < end; b++)
            {
                var image = output.AsSpan(b * tokens * c, tokens * c);
                if (prefixData is not null)
                    prefixData.AsSpan(0, prefixTokens * c).CopyTo(image);
                Simd.Add(image, posData.AsSpan(0, tokens * c), image);
            }
        });
    }

    [MethodImpl(Jit.Hot)]
    public void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y)
    {
        var input = F(x);
        var output = F(y);
        var gamma = F(weight);
        var beta = F(bias);
        // One image's rows among several images running at once (the team busy) run here as one call: split into chunks
        // they would only leave more rows to the one-row loop. Otherwise chunks are whole groups of the kernel's four rows.
        // Rows are independent, so the split never changes a bit.
        if (rows < 2 * LayerNormMinRows || !Team.Idle)
            RowOps.LayerNorm(input.AsSpan(0, rows * channels), output.AsSpan(0, rows * channels), rows, channels,
                gamma.AsSpan(0, channels), beta.AsSpan(0, channels), eps);
        else
            LayerNormParallel(input, output, gamma, beta, rows, channels, eps);
    }

    // Its own method: the closure's captures are allocated on entry to the method that declares them, and the
    // one-call path above allocates nothing.
    [MethodImpl(Jit.Hot)]
    private void LayerNormParallel(AlignedArray<float> input, AlignedArray<float> output, AlignedArray<float> gamma,
        AlignedArray<float> beta, int rows, int channels, float eps)
    {
        const int group = RowOps.LayerNormRowGroup;
        For((rows + group - 1) / group, LayerNormMinRows / group, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            int r0 = start * group, r1 = Math.Min(rows, end * group);
            RowOps.LayerNorm(input.AsSpan(r0 * channels, (r1 - r0) * channels), output.AsSpan(r0 * channels, (r1 - r0) * channels),
                r1 - r0, channels, gamma.AsSpan(0, channels), beta.AsSpan(0, channels), eps);
        });
    }

    // Rows below which a LayerNorm chunk is not worth a thread.
    private const int LayerNormMinRows = 64;

    [MethodImpl(Jit.Hot)]
    public void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled)
    {
        var input = F(x);
        var output = F(pooled);
        for (int b = 0; b < batch; b++)
            input.AsSpan(b * tokens * channels, count * channels).CopyTo(output.AsSpan(b * count * channels));
    }

    [MethodImpl(Jit.Hot)]
    public void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled)
    {
        var input = F(x);
        var sizes = F(size);
        var output = F(pooled);
        For(batch, 1, [MethodImpl(Jit.Hot)] (start, end) =>
        {
            var acc = new double[channels];
            for (int b = start; b < end; b++)
            {
                Array.Clear(acc);
                double total = 0;
                for (int t = skip; t < tokens; t++)
                {
                    double w = sizes[b * tokens + t];
                    total += w;
                    var row = input.AsSpan((b * tokens + t) * channels, channels);
                    for (int i = 0; i < channels; i++)
                        acc[i] += w * row[i];
                }
                var dst = output.AsSpan(b * channels, channels);
                for (int i = 0; i < channels; i++)
                    dst[i] = total > 0 ? (float)(acc[i] / total) : 0f;
            }
        });
    }

    /// <summary>Lets go of the scratch kept between ops (the buffers and weights are disposed by their owners).</summary>
    public void Dispose()
    {
        patchScratch.Clear();
        matchScratch.Clear();
    }
}
