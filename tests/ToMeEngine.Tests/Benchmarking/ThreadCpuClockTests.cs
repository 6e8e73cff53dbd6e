using System.Diagnostics;
using ToMe.Benchmarking;

namespace ToMe.Tests.Benchmarking;

public class ThreadCpuClockTests
{
    [Fact]
    public void CountsTheThreadsWorkAndNotItsSleep()
    {
        Assert.SkipUnless(ThreadCpuClock.IsAvailable, "thread CPU time is read on Linux only");
        double start = ThreadCpuClock.Seconds();
        Thread.Sleep(200);
        double slept = ThreadCpuClock.Seconds() - start;
        // 200 ms asleep cost next to no CPU time.
        Assert.InRange(slept, 0, 0.1);

        var wall = Stopwatch.StartNew();
        start = ThreadCpuClock.Seconds();
        double sum = 0;
        while (wall.ElapsedMilliseconds < 100)
            sum += Math.Sqrt(sum + 1);
        double busy = ThreadCpuClock.Seconds() - start;
        Assert.True(sum > 0);
        // Busy for 100 ms of wall time: some CPU time, never more than the wall time (other processes may hold the core).
        Assert.InRange(busy, 1e-4, wall.Elapsed.TotalSeconds + 0.01);
    }
}
