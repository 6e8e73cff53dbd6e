using System.Diagnostics;
using ToMe.Benchmarking;

namespace ToMe.Imaging;

/// <summary>
/// Stages of decoding and preprocessing that <see cref="ImagingProfile"/> clocks separately. Interleave is
/// the copy of the planes into a new interleaved <see cref="RgbImage"/> (<see cref="ImageDecoder.Decode(byte[], DecodeOptions?)"/>
/// only), its allocation included.
/// </summary>
internal enum ImagingStage
{
    EntropyDecode,
    Idct,
    UpsampleColor,
    ResizeHorizontal,
    ResizeVertical,
    Normalize,
    Interleave,
}

/// <summary>
/// Per-stage clocks for the current thread, on while an instance is alive (benchmarks only). The
/// decoder reads the clock once per band of rows, never per block, so the cost is nil when off and
/// small when on. On Linux the clock is the thread's CPU time, so time the thread spent waiting for a
/// busy core is not charged to any stage; elsewhere it is the wall clock.
/// </summary>
internal sealed class ImagingProfile : IDisposable
{
    [ThreadStatic] private static long[]? ticks;

    private ImagingProfile() => ticks = new long[Enum.GetValues<ImagingStage>().Length];

    public static ImagingProfile Start() => new();

    /// <summary>True when stages are charged CPU time rather than wall-clock time.</summary>
    public static bool CpuTime => OperatingSystem.IsLinux();

    /// <summary>A timestamp when profiling, else 0.</summary>
    public static long Now() => ticks is null ? 0 : Clock();

    /// <summary>Charges the time since <paramref name="since"/> to a stage; returns the new timestamp.</summary>
    public static long Lap(ImagingStage stage, long since)
    {
        if (ticks is not { } t) return 0;
        var now = Clock();
        t[(int)stage] += now - since;
        return now;
    }

    public IReadOnlyList<(string Stage, double Seconds)> Seconds()
    {
        var t = ticks ?? throw new InvalidOperationException("profile already stopped");
        double frequency = CpuTime ? 1e9 : Stopwatch.Frequency;
        return Enum.GetValues<ImagingStage>().Select(s => (s.ToString(), t[(int)s] / frequency)).ToList();
    }

    private static long Clock() =>
        CpuTime && ThreadCpuClock.TryNanoseconds(out long ns) ? ns : Stopwatch.GetTimestamp();

    public void Dispose() => ticks = null;
}
