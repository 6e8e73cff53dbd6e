using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace ToMe.Serving;

// The forward thread: gathers queued requests into batches, runs them, answers each request, replaces a lost engine.
public sealed partial class BatchingClassifier
{
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
                try
                {
                    RunBatch(batch, input, copied, staged.AsMemory(0, nextCount * tensorLength));
                }
                catch (Exception e) when (!stop.IsCancellationRequested)
                {
                    // Something around the forward pass threw, outside its own handling (a metrics or tracing listener
                    // of the host, say): the batch's requests fail with it rather than wait forever, and the thread
                    // goes on serving.
                    logger.LogError(e, "a batch of {Count} failed outside its forward pass", batch.Count);
                    foreach (var r in batch)
                        r.TrySetException(e);
                }
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
    private void RunBatch(List<Request> batch, float[] input, bool copied, ReadOnlyMemory<float> next)
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
            logits = engine.Logits(input.AsMemory(0, n * tensorLength), n, next);
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
            try
            {
                var answer = engine.TopK(logits.AsSpan(b * classes, classes), batch[b].TopK);
                Interlocked.Increment(ref completed); // before the caller can read Statistics
                batch[b].TrySetResult(answer);
            }
            catch (ArithmeticException e)
            {
                // This request's input overflowed the model; the batch's other requests have their answers.
                batch[b].TrySetException(e);
            }
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
}
