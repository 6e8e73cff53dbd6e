using System.Diagnostics;
using ToMe.Imaging;

namespace ToMe.Benchmarking;

/// <summary>
/// Decode + timm preprocessing of in-memory image files on the calling thread, one picture after another
/// (<see cref="Preprocessor.Run(byte[], Span{float}, DecodeOptions?)"/>): the rate a single core sustains
/// feeding the model. With <c>decodeOnly</c>, <see cref="ImageDecoder.Decode(byte[], DecodeOptions?)"/> of the
/// whole picture to interleaved RGB instead.
/// </summary>
internal sealed class PreprocessBenchmark
{
    private readonly IReadOnlyList<byte[]> files;
    private readonly Preprocessor pre;
    private readonly DecodeOptions options;
    private readonly float[] tensor;

    private readonly bool decodeOnly;

    public PreprocessBenchmark(IReadOnlyList<byte[]> files, PreprocessConfig config, DecodeOptions? options = null, bool decodeOnly = false)
    {
        this.decodeOnly = decodeOnly;
        if (files.Count == 0)
            throw new ArgumentException("no image files to time");
        this.files = files;
        pre = new Preprocessor(config);
        this.options = options ?? DecodeOptions.Default;
        tensor = new float[pre.OutputLength];
    }

    public int Images => files.Count;

    /// <summary>
    /// One pass over every file: wall-clock seconds and the process's CPU seconds (GC and JIT threads
    /// included). On a shared machine the CPU time is the steadier of the two.
    /// </summary>
    public (double Wall, double Cpu) Pass()
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        long start = Stopwatch.GetTimestamp();
        foreach (var file in files)
        {
            if (decodeOnly)
                ImageDecoder.Decode(file, options);
            else
                pre.Run(file, tensor, options);
        }
        var wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
        process.Refresh();
        return (wall, (process.TotalProcessorTime - cpu).TotalSeconds);
    }

    /// <summary>
    /// One pass with the decoder's and preprocessor's stage clocks on: seconds per stage over the pass (CPU
    /// seconds where <see cref="ImagingProfile.CpuTime"/>), and what the stages leave of the pass's total.
    /// </summary>
    public IReadOnlyList<(string Stage, double Seconds)> ProfiledPass()
    {
        using var profile = ImagingProfile.Start();
        var (wall, cpu) = Pass();
        var total = ImagingProfile.CpuTime ? cpu : wall;
        var stages = profile.Seconds();
        var rest = total - stages.Sum(s => s.Seconds);
        return [.. stages, ("other (parsing, allocation, dispatch)", Math.Max(rest, 0))];
    }
}
