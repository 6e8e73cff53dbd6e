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
public sealed partial class BatchingClassifier : IImageClassifier, IDisposable, IAsyncDisposable
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
    /// <param name="ownsEngine">Dispose the engine with this classifier, or at once when the options are refused (the caller
    /// then holds nothing to dispose it with).</param>
    /// <param name="metrics">Where to record metrics (shared by the classifiers of one service); null creates a private meter.</param>
    /// <param name="logger">Logs batch failures; null logs nothing.</param>
    /// <param name="replaceLostEngine">Builds a fresh engine (owned by the classifier) for one whose GPU context was lost;
    /// null keeps the lost engine, which refuses every batch with the cause (and <see cref="Fault"/> says so).</param>
    public BatchingClassifier(ToMeEngine engine, BatchingOptions? options = null, bool ownsEngine = true,
                              ServingMetrics? metrics = null, ILogger? logger = null, Func<ToMeEngine>? replaceLostEngine = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        Options = options?.Clone() ?? new BatchingOptions();
        try
        {
            Options.Validate();
        }
        catch when (ownsEngine)
        {
            engine.Dispose();
            throw;
        }
        // The engine refuses larger batches (its buffers are sized for its own limit): gather no more than it runs.
        Options.MaxBatchSize = Math.Min(Options.MaxBatchSize, engine.Options.MaxBatchSize);
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

    /// <inheritdoc/>
    /// <remarks>The model, backend, precision and device, e.g. "vit_tiny_patch16_224 on cuda (bf16), NVIDIA H200 (cuda:0, sm_90, 140 GiB)".</remarks>
    public string Description => $"{engine.Config.Architecture} on {engine.BackendName} ({engine.Precision.Name()}), {engine.DeviceName}";

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
    public Task<IReadOnlyList<Prediction>> ClassifyAsync(ImageInput image, int topK = 5, CancellationToken cancellationToken = default)
    {
        // Arguments are the caller's mistake, thrown at the call; the rest is the request's outcome, in its task.
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        return AdmitAndRunAsync(image, topK, cancellationToken);
    }

    private async Task<IReadOnlyList<Prediction>> AdmitAndRunAsync(ImageInput image, int topK, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(disposed, this);
        Admit(1);
        return await RunAdmittedAsync(image, topK, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">More images than <see cref="BatchingOptions.MaxQueueLength"/>.</exception>
    public IReadOnlyList<Task<IReadOnlyList<Prediction>>> ClassifyGroup(IReadOnlyList<ImageInput> images, int topK = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        foreach (var image in images)
            ArgumentNullException.ThrowIfNull(image, nameof(images));
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        if (images.Count > Options.MaxQueueLength)
            throw new ArgumentException($"{images.Count} images at once exceed what this classifier queues ({Options.MaxQueueLength} requests, " +
                                        "BatchingOptions.MaxQueueLength); send them in smaller groups", nameof(images));
        if (cancellationToken.IsCancellationRequested)
            return images.Select(_ => Task.FromCanceled<IReadOnlyList<Prediction>>(cancellationToken)).ToArray();
        ObjectDisposedException.ThrowIf(disposed, this);
        Admit(images.Count);
        return images.Select(image => RunAdmittedAsync(image, topK, cancellationToken)).ToArray();
    }

    /// <summary>Takes <paramref name="n"/> places in the queue at once, or none.</summary>
    private void Admit(int n)
    {
        if (Interlocked.Add(ref queued, n) > Options.MaxQueueLength)
        {
            Interlocked.Add(ref queued, -n);
            Interlocked.Add(ref rejected, n);
            metrics.Rejected.Add(n);
            throw new EngineOverloadedException($"the request queue is full ({Options.MaxQueueLength} requests waiting); retry later") { QueueLimit = Options.MaxQueueLength };
        }
        Interlocked.Add(ref requests, n);
        Interlocked.Add(ref load, n);
        metrics.Requests.Add(n);
    }

    /// <summary>One request whose place in the queue <see cref="Admit"/> took: preprocessed, queued, answered.</summary>
    private async Task<IReadOnlyList<Prediction>> RunAdmittedAsync(ImageInput image, int topK, CancellationToken cancellationToken)
    {
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
                Imaging.PreprocessedCheck.Check(preprocessed, tensorLength, nameof(image));
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
