using System.Runtime.CompilerServices;
using ToMe.Backends.Cpu;

namespace ToMe.Tests.Cpu;

public class ThreadTeamTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(2, 1000)]
    [InlineData(3, 7)]
    public void EveryIndexRunsExactlyOnce(int threads, int count)
    {
        var team = ThreadTeam.Get(threads);
        for (int round = 0; round < 200; round++)
        {
            var hits = new int[count];
            team.For(count, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ChunksCoverTheRangeWithoutGapsOrOverlap(int threads)
    {
        var team = ThreadTeam.Get(threads);
        foreach (int count in new[] { 1, 2, 63, 64, 197, 577, 1025, 3152 })
        {
            var hits = new int[count];
            team.For(count, 16, (start, end) =>
            {
                for (int i = start; i < end; i++)
                    Interlocked.Increment(ref hits[i]);
            }, chunksPerThread: 4);
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    /// <summary>
    /// The chunk count: at least minChunk indices per chunk (unless there are fewer indices than that), at most
    /// chunksPerThread per thread, and a multiple of the thread count once it reaches it, so the threads get equal shares.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ChunksAreAWholeNumberPerThread(int threads)
    {
        foreach (int count in new[] { 1, 2, 63, 64, 128, 197, 577, 1025, 3152 })
        foreach (int minChunk in new[] { 1, 16, 64 })
        foreach (int perThread in new[] { 1, 4 })
        {
            int chunks = ThreadTeam.Chunks(count, minChunk, threads, perThread);
            Assert.InRange(chunks, 1, Math.Min(count, threads * perThread));
            if (chunks > 1)
                Assert.True(count / chunks >= minChunk, $"{count} rows in {chunks} chunks of at least {minChunk}");
            if (chunks >= threads)
                Assert.Equal(0, chunks % threads);
            else
                Assert.Equal(Math.Max(1, count / minChunk), chunks);
        }
    }

    [Fact]
    public void OneImagesLayerNormRowsSplitEvenly()
    {
        Assert.Equal(2, ThreadTeam.Chunks(197, 64, threads: 2, chunksPerThread: 4));
        Assert.Equal(3, ThreadTeam.Chunks(197, 64, threads: 3, chunksPerThread: 4));
        Assert.Equal(8, ThreadTeam.Chunks(577, 64, threads: 2, chunksPerThread: 4));
    }

    [Fact]
    public void NestedAndConcurrentLoopsComplete()
    {
        var team = ThreadTeam.Get(2);
        var hits = new int[8 * 8];
        // Nested: the inner loops find the team busy and run on their own thread.
        team.For(8, i => team.For(8, j => Interlocked.Increment(ref hits[i * 8 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));

        var sums = new long[4];
        Parallel.For(0, 4, k =>
        {
            for (int round = 0; round < 100; round++)
                team.For(50, i => Interlocked.Add(ref sums[k], i));
        });
        Assert.All(sums, s => Assert.Equal(100L * 49 * 50 / 2, s));
    }

    /// <summary>A loop that runs on the caller alone (one thread, or the team busy) fails as the team's loop does.</summary>
    [Fact]
    public void ALoopOnTheCallerAloneFailsAsTheTeamDoes()
    {
        int runs = 0;
        var error = Assert.Throws<AggregateException>(() => ThreadTeam.Get(1).For(100, i =>
        {
            Interlocked.Increment(ref runs);
            if (i == 57)
                throw new InvalidOperationException("boom");
        }));
        Assert.IsType<InvalidOperationException>(error.InnerException);
        Assert.Equal(100, runs);
    }

    [Fact]
    public void AnExceptionInABodyReachesTheCallerAndTheTeamStaysUsable()
    {
        var team = ThreadTeam.Get(2);
        var error = Assert.Throws<AggregateException>(() => team.For(100, i =>
        {
            if (i == 57)
                throw new InvalidOperationException("boom");
        }));
        Assert.IsType<InvalidOperationException>(error.InnerException);
        int runs = 0;
        team.For(100, _ => Interlocked.Increment(ref runs));
        Assert.Equal(100, runs);
    }

    /// <summary>
    /// Once a loop returns, the team's workers hold nothing of it. A worker kept the last loop it ran, and through its body
    /// whatever that captured: the forward pass and weights of an engine disposed and dropped since, for as long as no
    /// other engine of that thread count ran (teams live as long as the process).
    /// </summary>
    [Fact]
    public void WorkersKeepNothingOfALoopThatReturned()
    {
        var team = ThreadTeam.Get(5); // no other test runs 5 threads: no other loop replaces what the workers hold
        var captured = RunOnTheWorkers(team);
        for (int i = 0; i < 3 && captured.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(captured.IsAlive, "what the loop's body captured is still reachable");
    }

    /// <summary>Runs loops until a worker has taken part in one; returns what their body captured.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference RunOnTheWorkers(ThreadTeam team)
    {
        var captured = new int[64];
        int caller = Environment.CurrentManagedThreadId, onWorkers = 0;
        for (int round = 0; round < 1000 && Volatile.Read(ref onWorkers) == 0; round++)
            team.For(captured.Length, i =>
            {
                Thread.SpinWait(1000);
                captured[i]++;
                if (Environment.CurrentManagedThreadId != caller)
                    Interlocked.Increment(ref onWorkers);
            });
        Assert.True(onWorkers > 0, "no worker took part in 1000 loops");
        return new WeakReference(captured);
    }
}
