using ToMe.Backends.Cuda.Native;
using ToMe.Merging;
using ToMe.Model;

namespace ToMe.Backends.Cuda.Graphs;

/// <summary>How many times each path ran, for tests and <c>tome bench</c>.</summary>
internal sealed record CudaGraphStatistics(long Warmups, long Captures, long Replays, long Uncaptured, long Failures,
    long Prefetched, int CachedGraphs, string? LastFailure);

/// <summary>
/// The CUDA backend with CUDA graphs and staged input copies. Every untraced forward pass of ToMe, ToMeCIS, kth, random
/// or no merging runs three ways, by its <see cref="ForwardKey"/>: the first time as written (the warm-up: kernels load,
/// scratch memory grows, every step's fingerprint and transfer size is noted), the second time captured into a graph
/// (every op is queued on the capturing stream, uploads after the first op read and downloads write pinned memory of
/// the recording's own) and then replayed, and from then on replayed: <see cref="ForwardPass"/> runs as always, but ops
/// only check that they are the recorded ones, uploads fill the pinned memory, and the first download launches the graph
/// and waits for it. ToMato runs as written: how many tokens it keeps is read back by the host in the middle of the pass.
/// </summary>
/// <remarks>
/// The images (the upload before the first op) never enter a graph: <see cref="InputStager"/> copies them through pinned
/// memory on a copy stream, and starts on the next batch's while this one runs. A freed device buffer (a larger batch's
/// workspace or scratch) drops every graph, since they address memory by pointer; they are captured again.
/// </remarks>
internal sealed unsafe partial class CudaGraphBackend : ForwardingBackend, IForwardCapture
{
    private enum Mode { Direct, Record, Capture, Replay }

    private readonly CudaBackend cuda;
    private readonly InputStager stager;
    private readonly ForwardTapeCache cache;
    private long freedSeen;
    private long warmups, captures, replays, uncaptured, failures;
    private string? lastFailure;
    private bool disposed;

    // The forward in progress.
    private Mode mode;
    private ForwardTape? tape;
    private int step, transfer;
    private bool inForward, opSeen, launched;
    private nint nextImages;
    private int nextLength;

    /// <param name="cuda">The backend (owned).</param>
    /// <param name="graphCapacity">Recorded forwards kept (each with its graph); 0 runs every forward as written.</param>
    public CudaGraphBackend(CudaBackend cuda, int graphCapacity) : base(cuda)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(graphCapacity);
        this.cuda = cuda;
        stager = new InputStager(cuda.Context, cuda.Stream);
        cache = new ForwardTapeCache(Math.Max(graphCapacity, 1));
        GraphsEnabled = graphCapacity > 0;
        freedSeen = cuda.Context.FreedBuffers;
    }

    public CudaBackend Cuda => cuda;

    public bool GraphsEnabled { get; }

    public CudaGraphStatistics Statistics =>
        new(warmups, captures, replays, uncaptured, failures, stager.Prefetched, cache.Graphs, lastFailure);

    public ForwardResult Run(ForwardKey key, ReadOnlySpan<float> images, ForwardGroup run, ReadOnlySpan<float> next)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!GraphsEnabled || key.Strategy is ToMatoMerge)
        {
            uncaptured++;
            return RunAs(Mode.Direct, null, images, run, next);
        }
        DropGraphsIfMemoryFreed(null);
        var recorded = cache.Get(key);
        if (recorded is null)
        {
            // The warm-up: everything the forward needs is loaded and allocated, outside any capture.
            var fresh = cache.Add(key);
            warmups++;
            try
            {
                return RunAs(Mode.Record, fresh, images, run, next);
            }
            catch
            {
                cache.Remove(key);
                throw;
            }
            finally
            {
                DropGraphsIfMemoryFreed(key);
            }
        }
        if (recorded.Failure is null && recorded.Graph is null)
            Capture(recorded, images, run);
        if (recorded.Failure is null)
        {
            try
            {
                var result = RunAs(Mode.Replay, recorded, images, run, next);
                replays++;
                return result;
            }
            catch (GraphMismatchException e)
            {
                Fail(recorded, e.Message);
            }
        }
        uncaptured++;
        return RunAs(Mode.Direct, null, images, run, next);
    }

    public void ForgetNext() => stager.Forget();

    private void Capture(ForwardTape recorded, ReadOnlySpan<float> images, ForwardGroup run)
    {
        try
        {
            recorded.AllocateStaging(cuda.Context);
            RunAs(Mode.Capture, recorded, images, run, default);
            if (!cuda.Stream.IsCapturing)
                throw new GraphMismatchException("the forward issued no op to capture");
            recorded.Graph = cuda.Stream.EndCapture();
            captures++;
        }
        catch (Exception e) when (e is CudaException or GraphMismatchException)
        {
            AbandonCapture();
            Fail(recorded, e.Message);
        }
        catch
        {
            AbandonCapture();
            throw;
        }
    }

    private void AbandonCapture()
    {
        if (CuDriver.cuStreamIsCapturing(cuda.Stream.Handle, out var status) == CuResult.Success && status != CuStreamCaptureStatus.None
            && CuDriver.cuStreamEndCapture(cuda.Stream.Handle, out var partial) == CuResult.Success && partial != 0)
            CuDriver.cuGraphDestroy(partial);
    }

    private void Fail(ForwardTape recorded, string reason)
    {
        failures++;
        lastFailure = reason;
        recorded.Failure = reason;
        recorded.Dispose();
    }

    /// <summary>Graphs address memory by pointer: once any device buffer was freed, they may point at memory no longer theirs.</summary>
    private void DropGraphsIfMemoryFreed(ForwardKey? keep)
    {
        long freed = cuda.Context.FreedBuffers;
        if (freed == freedSeen)
            return;
        cache.Clear(keep);
        freedSeen = freed;
    }

    private ForwardResult RunAs(Mode runMode, ForwardTape? recording, ReadOnlySpan<float> images, ForwardGroup run, ReadOnlySpan<float> next)
    {
        (mode, tape, step, transfer, inForward, opSeen, launched) = (runMode, recording, 0, 0, true, false, false);
        try
        {
            fixed (float* nextPointer = next)
            {
                // Fixed for the whole pass, so that the first upload may start copying the next batch.
                (nextImages, nextLength) = ((nint)nextPointer, next.Length);
                var result = run(images);
                if (mode == Mode.Replay)
                    Launch();
                if (mode is Mode.Capture or Mode.Replay && (step != tape!.Steps.Count || transfer != tape.Transfers.Count))
                    throw new GraphMismatchException($"the forward issued {step} of {tape.Steps.Count} recorded steps");
                return result;
            }
        }
        finally
        {
            (mode, tape, inForward, nextImages, nextLength) = (Mode.Direct, null, false, 0, 0);
        }
    }

    /// <summary>Replay: launches the graph once and waits for it (the first download needs its results).</summary>
    private void Launch()
    {
        if (launched)
            return;
        launched = true;
        tape!.Graph!.Launch(cuda.Stream);
        cuda.Stream.Synchronize();
    }

    /// <summary>
    /// Notes, checks or captures one step; false when the op itself must not run (a replay: the graph runs it).
    /// </summary>
    private bool Step(int fingerprint, bool beginsCapture = true)
    {
        switch (mode)
        {
            case Mode.Direct:
                return true;
            case Mode.Record:
                tape!.Steps.Add(fingerprint);
                return true;
        }
        if (step >= tape!.Steps.Count || tape.Steps[step] != fingerprint)
            throw new GraphMismatchException($"step {step} of the forward differs from the recorded one");
        step++;
        if (mode == Mode.Capture && beginsCapture && !cuda.Stream.IsCapturing)
            cuda.Stream.BeginCapture();
        return mode == Mode.Capture;
    }

    /// <summary>The next pinned transfer of a capture or replay, checked against the recorded size.</summary>
    private nint Transfer(long bytes)
    {
        if (mode == Mode.Direct)
            return 0;
        if (mode == Mode.Record)
        {
            tape!.Transfers.Add(bytes);
            return 0;
        }
        if (transfer >= tape!.Transfers.Count || tape.Transfers[transfer] != bytes)
            throw new GraphMismatchException($"transfer {transfer} of the forward differs from the recorded one");
        return tape.Slot(transfer++);
    }

    private static ulong Address(DeviceBuffer buffer) => buffer switch
    {
        CudaBuffer<float> f => f.Pointer,
        CudaBuffer<int> i => i.Pointer,
        _ => throw new ArgumentException($"expected a buffer of the CUDA backend, got {buffer.GetType().Name}"),
    };

    public override void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        cuda.SynchronizeQuietly();
        cache.Dispose();
        stager.Dispose();
        cuda.Dispose();
    }
}

/// <summary>A forward's ops differ from those recorded for its key: it runs uncaptured instead.</summary>
internal sealed class GraphMismatchException(string message) : Exception(message);
