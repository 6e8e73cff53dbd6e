using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ToMe.Imaging;
using ToMe.Model;

namespace ToMe.Serving;

/// <summary>Counts of what a <see cref="BatchingClassifier"/> has done since it was built.</summary>
public readonly record struct BatchingStatistics(long Requests, long Completed, long Rejected, long Cancelled, long Failed, long Batches, long Images)
{
    /// <summary>Images per forward pass, on average.</summary>
    public double MeanBatchSize => Batches == 0 ? 0 : (double)Images / Batches;
}

/// <summary>
/// A <see cref="ToMeEngine"/> behind a dynamic batcher: <see cref="ClassifyAsync"/> may be called from any number of threads;
/// each request is decoded and preprocessed by the engine's input pipeline (on every core, at most
/// <see cref="BatchingOptions.DecodeParallelism"/> at once, in arrival order), queued, and gathered with others into one
/// forward pass by a single dedicated thread (so preprocessing of the next batch overlaps the running one). Each caller gets the answer
/// for its own image, identical to <see cref="ToMeEngine.Classify(RgbImage, int)"/>: the forward pass computes each row of a
/// batch independently.
/// </summary>
/// <remarks>
/// Thread-safe. Back-pressure: at most <see cref="BatchingOptions.MaxQueueLength"/> requests wait; one more fails at once
/// with <see cref="EngineOverloadedException"/>. Cancellation removes a request whose forward pass has not started
/// (its task ends with <see cref="OperationCanceledException"/>), also one taken ahead as the next batch
/// (<see cref="BatchingOptions.UploadAhead"/>); once its batch runs, it completes normally.
/// <see cref="Dispose"/> lets the running batch finish and deliver, ends every waiting request with
/// <see cref="ObjectDisposedException"/>, and refuses new ones the same way; then it disposes the engine if it owns it.
/// An engine whose GPU context is lost (<see cref="Backends.Cuda.CudaContextLostException"/>: it fails the batch that ran)
/// is replaced by a fresh one when the classifier was given a way to build one; while that fails, <see cref="Fault"/> says
/// why and every batch tries again.
/// </remarks>
public sealed class BatchingClassifier : IImageClassifier, IDisposable, IAsyncDisposable
{
    // Queued: waiting, withdrawable. Ahead: taken as the next batch while the current one runs (its images upload
    // meanwhile), still withdrawable. Taken: in a batch whose forward pass starts, or ended by cancellation or disposal.
    private const int Queued = 0, Taken = 1, Ahead = 2;

    private sealed class Request(float[] tensor, int topK, Activity? activity) : TaskCompletionSource<IReadOnlyList<Prediction>>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public readonly float[] Tensor = tensor;
        public readonly int TopK = topK;
        public readonly Activity? Activity = activity;
        public readonly long Admitted = Stopwatch.GetTimestamp();
        public int State = Queued;
    }

    private volatile ToMeEngine engine;
    private bool ownsEngine;
    private readonly Func<ToMeEngine>? replaceLostEngine;
    private Exception? lostContext; // what left the engine unusable, until it is replaced
    private volatile Exception? fault;
    private readonly InputPipeline pipeline;
    private readonly int tensorLength;
    private readonly ServingMetrics metrics;
    private readonly bool ownsMetrics;
    private readonly ILogger logger;
    // BlockingCollection: the forward thread blocks on it with a timeout (the queueing delay) and a stop token.
    private readonly BlockingCollection<Request> queue = new(new ConcurrentQueue<Request>());
    private readonly CancellationTokenSource stop = new();
    private readonly Thread loop;
    private readonly object disposeGate = new();
    private int queued, load;
    private long requests, completed, rejected, cancelled, failed, batches, images;
    private volatile bool disposed;

    /// <param name="engine">The engine; <paramref name="ownsEngine"/> says whether <see cref="Dispose"/> disposes it.</param>
    /// <param name="options">Batching limits (copied); defaults when null.</param>
    /// <param name="ownsEngine">Dispose the engine with this classifier.</param>
    /// <param name="metrics">Where to record metrics (shared by the classifiers of one service); null creates a private meter.</param>
    /// <param name="logger">Logs batch failures; null logs nothing.</param>
    /// <param name="replaceLostEngine">Builds a fresh engine (owned by the classifier) for one whose GPU context was lost;
    /// null keeps the lost engine, which refuses every batch with the cause (and <see cref="Fault"/> says so).</param>
    public BatchingClassifier(ToMeEngine engine, BatchingOptions? options = null, bool ownsEngine = true,
                              ServingMetrics? metrics = null, ILogger? logger = null, Func<ToMeEngine>? replaceLostEngine = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        Options = options?.Clone() ?? new BatchingOptions();
        Options.Validate();
        this.engine = engine;
        this.ownsEngine = ownsEngine;
        this.replaceLostEngine = replaceLostEngine;
        // Tensors enough for the batch being run and the one being gathered; a burst beyond that allocates and is then let go.
        pipeline = new InputPipeline(new Preprocessor(engine.Config.Preprocess), Options.DecodeParallelism, 2 * Options.MaxBatchSize);
        tensorLength = pipeline.TensorLength;
        ownsMetrics = metrics is null;
        this.metrics = metrics ?? new ServingMetrics();
        this.metrics.Track(this);
        this.logger = logger ?? NullLogger.Instance;
        loop = new Thread(RunLoop) { IsBackground = true, Name = $"tome forward ({engine.BackendName})" };
        // The loop serves every caller: it must not inherit the constructing caller's Activity.Current (or other async locals).
        using (ExecutionContext.SuppressFlow())
            loop.Start();
    }

    /// <summary>The engine running the forward passes (a fresh one after a lost GPU context was replaced).</summary>
    public ToMeEngine Engine => engine;

    /// <summary>
    /// Why the classifier cannot serve now: its engine lost its GPU context and building a fresh one failed (the next batch
    /// tries again), or the classifier has no way to build one. Null while it serves.
    /// </summary>
    public Exception? Fault => fault;

    /// <summary>The batching limits in force (a copy of those given).</summary>
    public BatchingOptions Options { get; }

    public string Description => $"{engine.Config.Architecture} on {engine.BackendName} ({engine.Precision.Name()})";

    /// <inheritdoc/>
    public ModelConfig Model => engine.Config;

    /// <summary>Requests admitted and not yet taken into a running batch (decoding or waiting).</summary>
    public int QueueLength => Volatile.Read(ref queued);

    /// <summary>Requests admitted and not yet answered; what <see cref="EnginePool"/> balances on.</summary>
    public int Outstanding => Volatile.Read(ref load);

    /// <summary>Counts since construction (each read separately; consistent once the classifier is idle).</summary>
    public BatchingStatistics Statistics => new(Interlocked.Read(ref requests), Interlocked.Read(ref completed), Interlocked.Read(ref rejected),
        Interlocked.Read(ref cancelled), Interlocked.Read(ref failed), Interlocked.Read(ref batches), Interlocked.Read(ref images));

    /// <inheritdoc/>
    public async Task<IReadOnlyList<Prediction>> ClassifyAsync(ImageInput image, int topK = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(disposed, this);
        if (Interlocked.Increment(ref queued) > Options.MaxQueueLength)
        {
            Interlocked.Decrement(ref queued);
            Interlocked.Increment(ref rejected);
            metrics.Rejected.Add(1);
            throw new EngineOverloadedException($"the request queue is full ({Options.MaxQueueLength} requests waiting); retry later") { QueueLimit = Options.MaxQueueLength };
        }
        Interlocked.Increment(ref requests);
        Interlocked.Increment(ref load);
        metrics.Requests.Add(1);
        Request? request = null;
        float[]? tensor = null;
        using var activity = ServingTracing.Source.StartActivity("tome.classify");
        activity?.SetTag("tome.top_k", topK);
        try
        {
            if (image.Tensor is { } preprocessed)
            {
                if (preprocessed.Length != tensorLength)
                    throw new ArgumentException($"a preprocessed image has {preprocessed.Length} values, expected [3, {engine.Config.ImageSize}, {engine.Config.ImageSize}] = {tensorLength}", nameof(image));
                tensor = pipeline.Rent();
                preprocessed.CopyTo(tensor, 0);
            }
            else
            {
                var decodeOptions = engine.Options.Decode;
                var input = await image.BufferAsync(decodeOptions, cancellationToken).ConfigureAwait(false);
                tensor = await pipeline.PrepareAsync((chw, _) =>
                {
                    input.Preprocess(pipeline.Preprocessor, decodeOptions, chw);
                    return Task.CompletedTask;
                }, cancellationToken).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
            request = new Request(tensor, topK, activity);
            try
            {
                queue.Add(request, CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
                request = null; // adding was completed by Dispose
                throw new ObjectDisposedException(GetType().FullName, "the classifier was disposed");
            }
            using (cancellationToken.UnsafeRegister(static (state, token) =>
                   {
                       var (self, r) = ((BatchingClassifier, Request))state!;
                       self.Withdraw(r, token);
                   }, (this, request)))
                return await request.Task.ConfigureAwait(false);
        }
        catch (Exception e) when (request is null)
        {
            // Failed before reaching the queue (bad image, cancelled, disposed): only this request is affected.
            Interlocked.Decrement(ref queued);
            if (tensor is not null)
                pipeline.Return(tensor);
            Count(e, activity);
            throw;
        }
        catch (Exception e)
        {
            Count(e, activity);
            throw;
        }
        finally
        {
            Interlocked.Decrement(ref load);
        }
    }

    private void Count(Exception e, Activity? activity)
    {
        activity?.SetStatus(ActivityStatusCode.Error, e.Message);
        activity?.SetTag("error.type", e.GetType().FullName);
        if (e is OperationCanceledException)
        {
            Interlocked.Increment(ref cancelled);
            metrics.Cancelled.Add(1);
        }
        else
        {
            Interlocked.Increment(ref failed);
            metrics.Failed.Add(1);
        }
    }

    private void Withdraw(Request request, CancellationToken token)
    {
        if (!Claim(request))
            return; // already in a batch, or ended by disposal
        pipeline.Return(request.Tensor);
        request.TrySetCanceled(token);
    }

    /// <summary>
    /// Takes a request out of the waiting state (queued, or taken ahead); exactly one of the forward thread, cancellation
    /// and disposal wins.
    /// </summary>
    private bool Claim(Request request)
    {
        if (Interlocked.CompareExchange(ref request.State, Taken, Queued) != Queued
            && Interlocked.CompareExchange(ref request.State, Taken, Ahead) != Ahead)
            return false;
        Interlocked.Decrement(ref queued);
        return true;
    }

    /// <summary>Called on the forward thread just before each forward pass starts, with the batch's size; for tests.</summary>
    internal Action<int>? BeforeForward;

    private void RunLoop()
    {
        int max = Options.MaxBatchSize;
        // Requests gathered here stay withdrawable (cancellation, disposal) until claimed for a batch; so do those taken
        // ahead as the next batch, whose images `staged` holds (and a GPU uploads) while the current batch runs.
        var gathered = new List<Request>(max);
        var ahead = new List<Request>(max);
        var batch = new List<Request>(max);
        // Pinned: the next batch's images must be at the address announced to the GPU when its forward runs.
        float[]? input = null, staged = null;
        long delayTicks = (long)(Options.MaxQueueDelay.TotalSeconds * Stopwatch.Frequency);
        try
        {
            while (true)
            {
                input ??= GC.AllocateUninitializedArray<float>(max * tensorLength, pinned: true);
                bool copied = false;
                if (ahead.Count > 0)
                {
                    stop.Token.ThrowIfCancellationRequested(); // disposal ends them like every waiting request
                    foreach (var r in ahead)
                        if (Claim(r))
                            batch.Add(r);
                    copied = batch.Count == ahead.Count;
                    ahead.Clear();
                    if (copied)
                        (input, staged) = (staged!, input); // exactly the images announced
                    else // some were cancelled meanwhile: the rest run now, with what else is queued
                        while (batch.Count < max && queue.TryTake(out var more))
                            if (Claim(more))
                                batch.Add(more);
                }
                else
                {
                    gathered.RemoveAll(r => Volatile.Read(ref r.State) != Queued);
                    if (gathered.Count == 0)
                    {
                        if (!queue.TryTake(out var first, Timeout.Infinite, stop.Token))
                            break;
                        if (Volatile.Read(ref first.State) != Queued)
                            continue; // withdrawn by cancellation
                        gathered.Add(first);
                    }
                    long deadline = gathered[0].Admitted + delayTicks;
                    while (gathered.Count < max)
                    {
                        long left = deadline - Stopwatch.GetTimestamp();
                        int waitMs = left <= 0 ? 0 : (int)Math.Ceiling(left * 1000.0 / Stopwatch.Frequency);
                        if (!queue.TryTake(out var next, waitMs, stop.Token))
                            break;
                        if (Volatile.Read(ref next.State) == Queued)
                            gathered.Add(next);
                    }
                    foreach (var r in gathered)
                        if (Claim(r))
                            batch.Add(r);
                    gathered.Clear();
                }
                if (batch.Count == 0)
                    continue;
                int nextCount = 0;
                if (Options.UploadAhead && engine.TakesNextBatch)
                {
                    staged ??= GC.AllocateUninitializedArray<float>(max * tensorLength, pinned: true);
                    nextCount = TakeAhead(gathered, ahead, staged);
                }
                RunBatch(batch, input, copied, staged.AsSpan(0, nextCount * tensorLength));
                batch.Clear();
            }
        }
        catch (OperationCanceledException)
        {
            // Disposal: requests gathered or taken ahead but not yet run end like every other waiting request.
            foreach (var r in gathered)
                EndDisposed(r);
            foreach (var r in ahead)
                EndDisposed(r);
        }
    }

    /// <summary>
    /// When a full batch is queued as a forward starts, takes it ahead as the next batch and copies its images into
    /// <paramref name="staged"/>; returns how many. Otherwise what it took from the queue stays gathered, withdrawable, and
    /// the next batch forms after this forward as it would have (its oldest request's deadline unchanged).
    /// </summary>
    private int TakeAhead(List<Request> gathered, List<Request> ahead, float[] staged)
    {
        int max = Options.MaxBatchSize;
        while (gathered.Count < max && queue.TryTake(out var r))
            if (Volatile.Read(ref r.State) == Queued)
                gathered.Add(r);
        if (gathered.Count < max)
            return 0;
        foreach (var r in gathered)
            if (Interlocked.CompareExchange(ref r.State, Ahead, Queued) == Queued)
            {
                r.Tensor.AsSpan(0, tensorLength).CopyTo(staged.AsSpan(ahead.Count * tensorLength, tensorLength));
                ahead.Add(r);
            }
        gathered.Clear();
        return ahead.Count;
    }

    private void EndDisposed(Request request)
    {
        if (!Claim(request))
            return;
        pipeline.Return(request.Tensor);
        request.TrySetException(new ObjectDisposedException(GetType().FullName, "the classifier was disposed before the request ran"));
    }

    /// <param name="batch">The claimed requests.</param>
    /// <param name="input">Where the batch's images go (pinned, <see cref="BatchingOptions.MaxBatchSize"/> images).</param>
    /// <param name="copied">The batch's images are in <paramref name="input"/> already (it was taken ahead).</param>
    /// <param name="next">The images of the batch taken ahead, which runs next: a GPU uploads them during this forward.</param>
    private void RunBatch(List<Request> batch, float[] input, bool copied, ReadOnlySpan<float> next)
    {
        int n = batch.Count;
        using var activity = StartBatchActivity(batch);
        long start = Stopwatch.GetTimestamp();
        for (int b = 0; b < n; b++)
        {
            if (!copied)
                batch[b].Tensor.AsSpan(0, tensorLength).CopyTo(input.AsSpan(b * tensorLength, tensorLength));
            pipeline.Return(batch[b].Tensor);
            double queuedMs = Stopwatch.GetElapsedTime(batch[b].Admitted, start).TotalMilliseconds;
            metrics.QueueTime.Record(queuedMs);
            batch[b].Activity?.SetTag("tome.queue.time_ms", queuedMs).SetTag("tome.batch.size", n);
        }
        float[] logits;
        try
        {
            if (fault is not null && replaceLostEngine is not null && !TryReplace())
                throw new InvalidOperationException(fault.Message, lostContext);
            BeforeForward?.Invoke(n);
            logits = engine.Logits(input.AsSpan(0, n * tensorLength), n, next);
        }
        catch (Exception e)
        {
            logger.LogError(e, "forward pass of a batch of {Count} failed on {Backend}", n, engine.BackendName);
            // Replaced before the batch's callers hear of it, so a retry finds the fresh engine.
            if (e is Backends.Cuda.CudaContextLostException && fault is null)
            {
                lostContext = e;
                if (replaceLostEngine is not null)
                    TryReplace();
                else
                    fault = new InvalidOperationException($"{Description}: the GPU context was lost ({e.Message}); this classifier was given no way to build a fresh engine", e);
            }
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            activity?.SetTag("error.type", e.GetType().FullName);
            foreach (var r in batch)
                r.TrySetException(e);
            return;
        }
        metrics.ForwardTime.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        metrics.BatchSize.Record(n);
        metrics.Batches.Add(1);
        metrics.Images.Add(n);
        Interlocked.Increment(ref batches);
        Interlocked.Add(ref images, n);
        int classes = engine.Config.NumClasses;
        for (int b = 0; b < n; b++)
        {
            batch[b].TrySetResult(engine.TopK(logits.AsSpan(b * classes, classes), batch[b].TopK));
            Interlocked.Increment(ref completed);
        }
    }

    /// <summary>
    /// On the forward thread: builds a fresh engine for the one whose context was lost (which has released its device memory
    /// already); when that fails, <see cref="Fault"/> says why.
    /// </summary>
    private bool TryReplace()
    {
        try
        {
            var fresh = replaceLostEngine!();
            var old = engine;
            engine = fresh;
            if (ownsEngine)
                old.Dispose();
            ownsEngine = true;
            fault = null;
            logger.LogWarning("replaced the engine on {Backend} after its GPU context was lost: {Cause}", fresh.BackendName, lostContext!.Message);
            lostContext = null;
            return true;
        }
        catch (Exception e)
        {
            logger.LogError(e, "could not replace the engine on {Backend} after its GPU context was lost", engine.BackendName);
            fault = new InvalidOperationException(
                $"{Description}: the GPU context was lost ({lostContext!.Message}) and a fresh engine could not be built: {e.Message}", e);
            return false;
        }
    }

    private Activity? StartBatchActivity(List<Request> batch)
    {
        if (!ServingTracing.Source.HasListeners())
            return null;
        var links = new List<ActivityLink>(batch.Count);
        foreach (var r in batch)
            if (r.Activity is { } a)
                links.Add(new ActivityLink(a.Context));
        var activity = ServingTracing.Source.StartActivity("tome.batch", ActivityKind.Internal, parentContext: default, links: links);
        activity?.SetTag("tome.batch.size", batch.Count).SetTag("tome.backend", engine.BackendName)
            .SetTag("tome.model", engine.Config.Architecture);
        return activity;
    }

    /// <summary>
    /// Stops the forward thread after the batch it is running, ends waiting requests with <see cref="ObjectDisposedException"/>
    /// and disposes the engine if owned. Blocks at most for one forward pass; idempotent.
    /// </summary>
    public void Dispose()
    {
        lock (disposeGate)
        {
            if (disposed)
                return;
            disposed = true;
        }
        queue.CompleteAdding();
        stop.Cancel();
        if (Thread.CurrentThread != loop)
            loop.Join();
        while (queue.TryTake(out var r))
            EndDisposed(r);
        metrics.Untrack(this);
        if (ownsMetrics)
            metrics.Dispose();
        if (ownsEngine)
            engine.Dispose();
        // The queue and the token source stay undisposed: a caller racing with Dispose may still touch them, and they hold no native resources.
    }

    /// <summary>As <see cref="Dispose"/>, without blocking the calling thread on the running batch.</summary>
    public ValueTask DisposeAsync() => new(Task.Run(Dispose));
}
