using System.Diagnostics;

namespace ToMe.Imaging;

/// <summary>Stages of decoding and preprocessing that <see cref="ImagingProfile"/> clocks separately.</summary>
internal enum ImagingStage
{
    EntropyDecode,
    Idct,
    UpsampleColor,
    ResizeHorizontal,
    ResizeVertical,
    Normalize,
}

/// <summary>
/// Per-stage clocks for the current thread, on while an instance is alive (benchmarks only). The
/// decoder reads the clock once per band of rows, never per block, so the cost is nil when off and
/// small when on.
/// </summary>
internal sealed class ImagingProfile : IDisposable
{
    [ThreadStatic] private static long[]? ticks;

    private ImagingProfile() => ticks = new long[Enum.GetValues<ImagingStage>().Length];

    public static ImagingProfile Start() => new();

    /// <summary>A timestamp when profiling, else 0.</summary>
    public static long Now() => ticks is null ? 0 : Stopwatch.GetTimestamp();

    /// <summary>Charges the time since <paramref name="since"/> to a stage; returns the new timestamp.</summary>
    public static long Lap(ImagingStage stage, long since)
    {
        if (ticks is not { } t) return 0;
        var now = Stopwatch.GetTimestamp();
        t[(int)stage] += now - since;
        return now;
    }

    public IReadOnlyList<(string Stage, double Seconds)> Seconds()
    {
        var t = ticks ?? throw new InvalidOperationException("profile already stopped");
        return Enum.GetValues<ImagingStage>().Select(s => (s.ToString(), (double)t[(int)s] / Stopwatch.Frequency)).ToList();
    }

    public void Dispose() => ticks = null;
}
