using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>A non-blocking CUDA stream; one per engine instance.</summary>
internal sealed class CudaStream : CudaResource
{
    private readonly nint handle;

    public CudaStream(CudaContext context) : base(context)
    {
        try
        {
            context.MakeCurrent();
            Cu.Check(CuDriver.cuStreamCreate(out handle, CuFlags.StreamNonBlocking));
        }
        catch
        {
            AbandonConstruction();
            throw;
        }
    }

    internal nint Handle
    {
        get
        {
            ThrowIfDisposed();
            return handle;
        }
    }

    /// <summary>Waits for all work queued on the stream and reports any asynchronous error.</summary>
    public void Synchronize()
    {
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuStreamSynchronize(Handle));
    }

    /// <summary>True while the stream is being captured into a graph (synchronizing is then illegal).</summary>
    public bool IsCapturing
    {
        get
        {
            Context.MakeCurrent();
            Cu.Check(CuDriver.cuStreamIsCapturing(Handle, out var status));
            return status != CuStreamCaptureStatus.None;
        }
    }

    /// <summary>Makes later work on this stream wait for <paramref name="event"/>.</summary>
    public void Wait(CudaEvent @event)
    {
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuStreamWaitEvent(Handle, @event.Handle, 0));
    }

    /// <summary>Starts capturing this stream's work into a graph; finish with <see cref="EndCapture"/>.</summary>
    public void BeginCapture()
    {
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuStreamBeginCapture_v2(Handle, CuStreamCaptureMode.ThreadLocal));
    }

    /// <summary>Ends capture and instantiates the captured work as a replayable graph.</summary>
    public CudaGraph EndCapture()
    {
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuStreamEndCapture(Handle, out var graph));
        try
        {
            Cu.Check(CuDriver.cuGraphInstantiateWithFlags(out var exec, graph, 0));
            return new CudaGraph(Context, graph, exec);
        }
        catch
        {
            CuDriver.cuGraphDestroy(graph);
            throw;
        }
    }

    /// <summary>Captures what <paramref name="record"/> queues on this stream into a graph.</summary>
    public CudaGraph Capture(Action<CudaStream> record)
    {
        BeginCapture();
        try
        {
            record(this);
        }
        catch
        {
            // End the capture so the stream is usable again; the partial graph is discarded.
            if (CuDriver.cuStreamEndCapture(handle, out var partial) == CuResult.Success && partial != 0)
                CuDriver.cuGraphDestroy(partial);
            throw;
        }
        return EndCapture();
    }

    protected override void Release() => CuDriver.cuStreamDestroy_v2(handle);
}

/// <summary>A CUDA event, for timing and cross-stream ordering.</summary>
internal sealed class CudaEvent : CudaResource
{
    private readonly nint handle;

    public CudaEvent(CudaContext context, bool timing = true) : base(context)
    {
        try
        {
            context.MakeCurrent();
            Cu.Check(CuDriver.cuEventCreate(out handle, timing ? CuFlags.EventDefault : CuFlags.EventDisableTiming));
        }
        catch
        {
            AbandonConstruction();
            throw;
        }
    }

    internal nint Handle
    {
        get
        {
            ThrowIfDisposed();
            return handle;
        }
    }

    public void Record(CudaStream stream)
    {
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuEventRecord(Handle, stream.Handle));
    }

    public void Synchronize()
    {
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuEventSynchronize(Handle));
    }

    /// <summary>True when all work before the recorded point has completed.</summary>
    public bool IsComplete
    {
        get
        {
            Context.MakeCurrent();
            var result = CuDriver.cuEventQuery(Handle);
            if (result == CuResult.ErrorNotReady)
                return false;
            Cu.Check(result);
            return true;
        }
    }

    /// <summary>Milliseconds between <paramref name="start"/> and <paramref name="end"/> (both recorded and completed).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        start.Context.MakeCurrent();
        Cu.Check(CuDriver.cuEventElapsedTime(out var ms, start.Handle, end.Handle));
        return ms;
    }

    protected override void Release() => CuDriver.cuEventDestroy_v2(handle);
}

/// <summary>An instantiated CUDA graph: replays captured work with one launch.</summary>
internal sealed class CudaGraph : CudaResource
{
    private readonly nint graph;
    private readonly nint exec;

    internal CudaGraph(CudaContext context, nint graph, nint exec) : base(context)
    {
        this.graph = graph;
        this.exec = exec;
    }

    public void Launch(CudaStream stream)
    {
        ThrowIfDisposed();
        Context.MakeCurrent();
        Cu.Check(CuDriver.cuGraphLaunch(exec, stream.Handle));
        KernelLaunchDebug.AfterLaunch(stream, "graph launch");
    }

    protected override void Release()
    {
        CuDriver.cuGraphExecDestroy(exec);
        CuDriver.cuGraphDestroy(graph);
    }
}
