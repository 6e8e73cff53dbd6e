using System.Diagnostics;
using ToMe.Backends;

namespace ToMe.Benchmarking;

/// <summary>Times work queued on a backend: device events on CUDA, the host clock where ops run synchronously.</summary>
internal interface IKernelClock
{
    /// <summary>Mean milliseconds of one call of <paramref name="work"/> over <paramref name="repeats"/> calls queued back to back.</summary>
    double Time(Action work, int repeats);

    /// <summary>Device-to-device copy bandwidth in GB/s (bytes read + bytes written) over a buffer of <paramref name="bytes"/>.</summary>
    double CopyBandwidth(long bytes);
}

/// <summary>The host clock, for backends whose ops complete before they return (the CPU).</summary>
internal sealed class HostKernelClock : IKernelClock
{
    public double Time(Action work, int repeats)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < repeats; i++)
            work();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds / repeats;
    }

    public double CopyBandwidth(long bytes)
    {
        var source = new byte[bytes];
        var destination = new byte[bytes];
        source.AsSpan().Fill(1);
        double ms = KernelTimer.Best(this, () => source.AsSpan().CopyTo(destination));
        return 2.0 * bytes / (ms / 1e3) / 1e9;
    }

    public static IKernelClock For(IBackend backend) => backend as IKernelClock ?? new HostKernelClock();
}

internal static class KernelTimer
{
    /// <summary>
    /// Milliseconds per call: one untimed call, a probe (repeated until the clock sees time pass), then enough calls queued back to back to last about
    /// <paramref name="budgetMilliseconds"/> (3 to 1000), best of three such rounds. A budget of 0 times the probe alone.
    /// </summary>
    public static double Best(IKernelClock clock, Action work, double budgetMilliseconds = 25)
    {
        work();
        // An op shorter than the clock's resolution can read 0 ms once (a one-row gather on a coarse VM clock): the probe
        // doubles its calls until time is seen, so no rate is ever infinite.
        double probe = clock.Time(work, 1);
        for (int calls = 2; probe <= 0 && calls <= 1 << 20; calls *= 2)
            probe = clock.Time(work, calls);
        if (budgetMilliseconds <= 0)
            return probe;
        int repeats = (int)Math.Clamp(Math.Ceiling(budgetMilliseconds / Math.Max(probe, 1e-4)), 3, 1000);
        double best = double.MaxValue;
        for (int round = 0; round < 3; round++)
            best = Math.Min(best, clock.Time(work, repeats));
        return best;
    }
}
