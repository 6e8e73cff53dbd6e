using System.Runtime.InteropServices;

namespace ToMe.Benchmarking;

/// <summary>
/// The calling thread's CPU time (Linux: CLOCK_THREAD_CPUTIME_ID). Unlike the wall clock it does not count the time
/// other processes hold the core, so single-threaded timings stay steady on a shared machine.
/// </summary>
internal static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTime = 3; // CLOCK_THREAD_CPUTIME_ID

    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>Whether <see cref="TryNanoseconds"/> can read the clock here.</summary>
    public static bool IsAvailable => OperatingSystem.IsLinux();

    /// <summary>The calling thread's CPU time in ns; false where it cannot be read.</summary>
    public static bool TryNanoseconds(out long nanoseconds)
    {
        if (!IsAvailable || ClockGetTime(ClockThreadCpuTime, out var t) != 0)
        {
            nanoseconds = 0;
            return false;
        }
        nanoseconds = t.Seconds * 1_000_000_000 + t.Nanoseconds;
        return true;
    }

    /// <summary>The calling thread's CPU time in seconds (throws where it cannot be read).</summary>
    public static double Seconds() => TryNanoseconds(out long ns)
        ? ns * 1e-9
        : throw new PlatformNotSupportedException("the thread CPU time clock is not available here");
}
