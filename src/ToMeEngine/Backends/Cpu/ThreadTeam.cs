using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

/// <summary>
/// The CPU backend's parallel loops: a team of dedicated worker threads plus the calling thread, sized by thread count
/// and shared by every backend of that size in the process.
/// </summary>
/// <remarks>
/// A forward pass is a few hundred short ops, each one parallel loop. Handing each to the .NET thread pool cost a wake-up
/// per op, which dominated batch-1 latency, and on a loaded machine an op waited for a worker that had not been scheduled
/// yet. Here a loop is published to workers that spin briefly between ops (so back-to-back ops find them awake), every
/// index is claimed from a shared counter, so the caller does all of the work itself when no worker turns up in time and
/// then waits only for indices a worker has already claimed. Which thread runs an index never changes its
/// result: bodies write disjoint outputs.
/// </remarks>
internal sealed class ThreadTeam
{
    // How long an idle worker keeps polling for the next loop before it sleeps (the gaps between a forward's ops are
    // microseconds; between forwards a sleeping worker costs nothing).
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs
    private static readonly ConcurrentDictionary<int, ThreadTeam> Teams = new();

    private readonly SemaphoreSlim wake = new(0);
    private Job? current;
    private long published; // loops published to the workers, numbering them
    private int sleeping;
    private int busy;

    private ThreadTeam(int threads)
    {
        Threads = threads;
        for (int i = 1; i < threads; i++)
            new Thread(Work) { IsBackground = true, Name = $"tome-cpu-{i}" }.Start();
    }

    /// <summary>Threads taking part in a loop, the caller included.</summary>
    public int Threads { get; }

    /// <summary>
    /// Whether a loop started now would be shared with the workers. False while the team runs another loop (a loop nested
    /// in a body, e.g. an op of one image among several running at once): a loop started then runs on the caller alone,
    /// and work split for the team would be split for nothing.
    /// </summary>
    public bool Idle => Threads > 1 && Volatile.Read(ref busy) == 0;

    /// <summary>The process's team of <paramref name="threads"/> threads (created on first use).</summary>
    public static ThreadTeam Get(int threads) => Teams.GetOrAdd(Math.Max(1, threads), n => new ThreadTeam(n));

    /// <summary>
    /// Runs body(i) for every i in [0, count) on the team, returning when all are done. A loop started while the team
    /// is already running one (from another thread, or nested in a body) runs on the calling thread alone. Either way
    /// every index runs, and a body's exception reaches the caller as an AggregateException after the loop.
    /// </summary>
    [MethodImpl(Jit.Hot)]
    public void For(int count, Action<int> body)
    {
        if (count <= 0)
            return;
        var job = new Job(body, count);
        if (count == 1 || Threads == 1 || Interlocked.CompareExchange(ref busy, 1, 0) != 0)
        {
            job.Run();
            job.ThrowIfFailed();
            return;
        }
        try
        {
            job.Number = ++published; // under `busy`: one publisher at a time
            Volatile.Write(ref current, job);
            int asleep = Interlocked.Exchange(ref sleeping, 0);
            if (asleep > 0)
                wake.Release(asleep);
            job.Run();
            job.WaitForAll();
        }
        finally
        {
            Volatile.Write(ref current, null);
            Volatile.Write(ref busy, 0);
        }
        job.ThrowIfFailed();
    }

    /// <summary>
    /// body(start, end) over [0, count) in contiguous chunks of at least minChunk indices, up to chunksPerThread per
    /// thread (more chunks than threads even out uneven work and late workers).
    /// </summary>
    [MethodImpl(Jit.Hot)]
    public void For(int count, int minChunk, Action<int, int> body, int chunksPerThread = 1)
    {
        int chunks = Chunks(count, minChunk, Threads, chunksPerThread);
        For(chunks, [MethodImpl(Jit.Hot)] (i) => body((int)((long)count * i / chunks), (int)((long)count * (i + 1) / chunks)));
    }

    /// <summary>
    /// How many chunks <see cref="For(int, int, Action{int, int}, int)"/> splits count indices into: as many as fit
    /// minChunk, up to chunksPerThread per thread, and a whole number per thread once there are at least as many as
    /// threads. One image's 197 LayerNorm rows at minChunk 64 made 3 chunks for 2 threads: one thread ran two of them
    /// while the other waited; 2 chunks of 98 and 99 rows end together.
    /// </summary>
    internal static int Chunks(int count, int minChunk, int threads, int chunksPerThread)
    {
        int chunks = (int)Math.Clamp(count / Math.Max(1, minChunk), 1, Math.Min(count, (long)threads * Math.Max(1, chunksPerThread)));
        return chunks >= threads ? chunks / threads * threads : chunks;
    }

    // A worker remembers the last loop it ran by number, not by reference: a sleeping worker holding the loop would keep its
    // body reachable, and with it the forward pass and weights of an engine disposed and dropped since.
    [MethodImpl(Jit.Hot)]
    private void Work()
    {
        long last = 0;
        while (true)
        {
            long spinUntil = Stopwatch.GetTimestamp() + SpinTicks;
            var job = Volatile.Read(ref current);
            while (job is null || job.Number == last)
            {
                if (Stopwatch.GetTimestamp() > spinUntil)
                {
                    Interlocked.Increment(ref sleeping);
                    // Re-read after registering as asleep: a loop published before that is not missed.
                    job = Volatile.Read(ref current);
                    if (job is null || job.Number == last)
                    {
                        job = null;
                        wake.Wait();
                    }
                    else if (!Unregister())
                        wake.Wait(); // the loop counted this worker and releases a permit for it: take it, or a later sleep ends at once
                    spinUntil = Stopwatch.GetTimestamp() + SpinTicks;
                }
                else
                {
                    Thread.SpinWait(20);
                }
                job = Volatile.Read(ref current);
            }
            last = job.Number;
            job.Run();
        }
    }

    // A worker that found a loop after counting itself asleep takes its count back, unless a loop has already taken the
    // count (and so owes it a permit). Counts are interchangeable: what matters is that every registration ends in exactly
    // one of a permit taken or a count withdrawn.
    private bool Unregister()
    {
        for (int n; (n = Volatile.Read(ref sleeping)) > 0;)
            if (Interlocked.CompareExchange(ref sleeping, n - 1, n) == n)
                return true;
        return false;
    }

    private sealed class Job(Action<int> body, int count)
    {
        public long Number; // set before the loop is published
        private int next;
        private int finished;
        private Exception? error;

        // Claims indices until none is left; runs on the caller and on every worker that finds the job.
        [MethodImpl(Jit.Hot)]
        public void Run()
        {
            int i;
            while ((i = Interlocked.Increment(ref next) - 1) < count)
            {
                try
                {
                    body(i);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref error, e, null);
                }
                Interlocked.Increment(ref finished);
            }
        }

        // Every index has been claimed when the caller's Run returns; waits for those a worker is still running.
        [MethodImpl(Jit.Hot)]
        public void WaitForAll()
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref finished) < count)
                spin.SpinOnce(sleep1Threshold: -1);
        }

        public void ThrowIfFailed()
        {
            if (error is not null)
                throw new AggregateException(error);
        }
    }
}
