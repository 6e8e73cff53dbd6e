using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace ToMe.Imaging;

/// <summary>
/// One input of <see cref="InputPipeline.RunAsync"/>, in input order: its preprocessed tensor [3, S, S] (rented from the
/// pipeline: give it back with <see cref="InputPipeline.Return"/> once copied), or the error that left it without one.
/// </summary>
internal readonly record struct PreparedInput<T>(int Index, T Input, float[]? Tensor, Exception? Error);

/// <summary>
/// The engine's one input pipeline: reading, decoding, resizing and normalizing run on the thread pool, at most
/// <see cref="Parallelism"/> inputs at once (one per core by default), into tensors from a bounded pool. Every image path of
/// the engine goes through it: <see cref="ToMeEngine.ClassifyManyAsync(IEnumerable{string}, int, int, CancellationToken)"/>,
/// <c>ClassifyBatch</c>, the batching service, <c>tome eval</c> and <c>tome bench --images</c>.
/// </summary>
/// <remarks>
/// Two ways in. <see cref="PrepareAsync"/> prepares one input once a decoder is free (callers that arrive on their own, as
/// a service's requests do, queue for the decoders in arrival order). <see cref="RunAsync"/> streams a sequence in order:
/// a producer keeps every decoder busy, ahead of the consumer, until <c>window</c> tensors are started but not yet taken
/// (back-pressure: the source is read no further), so decoding overlaps whatever the consumer does between reads (the
/// forward pass). Thread-safe; statistics are cumulative.
/// </remarks>
internal sealed class InputPipeline
{
    private readonly Preprocessor preprocessor;
    private readonly TensorPool tensors;
    private readonly SemaphoreSlim decoders;
    private int running, peak;
    private long prepared, busyTicks;

    /// <param name="preprocessor">The model's eval transform.</param>
    /// <param name="parallelism">Inputs decoded at once; 0 means one per processor.</param>
    /// <param name="pooledTensors">Tensors kept for reuse; more may be in use during a burst, then they are let go.</param>
    public InputPipeline(Preprocessor preprocessor, int parallelism = 0, int pooledTensors = 0)
    {
        ArgumentNullException.ThrowIfNull(preprocessor);
        ArgumentOutOfRangeException.ThrowIfNegative(parallelism);
        this.preprocessor = preprocessor;
        Parallelism = parallelism == 0 ? Environment.ProcessorCount : parallelism;
        tensors = new TensorPool(preprocessor.OutputLength, pooledTensors > 0 ? pooledTensors : 2 * Parallelism);
        decoders = new SemaphoreSlim(Parallelism, Parallelism);
    }

    /// <summary>The model's eval transform, for the callers' fill functions.</summary>
    public Preprocessor Preprocessor => preprocessor;

    /// <summary>Most inputs decoded and preprocessed at once.</summary>
    public int Parallelism { get; }

    /// <summary>Floats per tensor, 3·S·S.</summary>
    public int TensorLength => preprocessor.OutputLength;

    /// <summary>The most inputs that were ever being decoded at the same moment.</summary>
    public int PeakConcurrency => Volatile.Read(ref peak);

    /// <summary>Inputs prepared successfully.</summary>
    public long Prepared => Interlocked.Read(ref prepared);

    /// <summary>Time spent preparing, summed over the decoders (wall time × busy decoders).</summary>
    public TimeSpan BusyTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref busyTicks));

    /// <summary>An empty tensor of <see cref="TensorLength"/> floats from the pool (for inputs that arrive preprocessed).</summary>
    public float[] Rent() => tensors.Rent();

    /// <summary>Gives a tensor back to the pool; the caller must not use it again.</summary>
    public void Return(float[] tensor) => tensors.Return(tensor);

    /// <summary>
    /// Reads, decodes and preprocesses one input into a pooled tensor (through <paramref name="fill"/>) on the thread pool
    /// once a decoder is free; the tensor is the caller's until it calls <see cref="Return"/>. What <paramref name="fill"/>
    /// throws is thrown here.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired while waiting or decoding.</exception>
    public async Task<float[]> PrepareAsync(Func<float[], CancellationToken, Task> fill, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fill);
        await decoders.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => Prepare(fill, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            decoders.Release();
        }
    }

    private async Task<float[]> Prepare(Func<float[], CancellationToken, Task> fill, CancellationToken cancellationToken)
    {
        int now = Interlocked.Increment(ref running);
        for (int seen; (seen = Volatile.Read(ref peak)) < now && Interlocked.CompareExchange(ref peak, now, seen) != seen;)
        {
        }
        long start = Stopwatch.GetTimestamp();
        try
        {
            var tensor = tensors.Rent();
            try
            {
                await fill(tensor, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                tensors.Return(tensor);
                throw;
            }
            Interlocked.Increment(ref prepared);
            return tensor;
        }
        finally
        {
            Interlocked.Add(ref busyTicks, Stopwatch.GetTimestamp() - start);
            Interlocked.Decrement(ref running);
        }
    }

    /// <summary>A sequence already in memory as the asynchronous source <see cref="RunAsync"/> reads.</summary>
    public static async IAsyncEnumerable<T> Sequence<T>(IEnumerable<T> items)
    {
        foreach (var item in items)
            yield return item;
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>
    /// Prepares <paramref name="inputs"/> in parallel and yields them in input order, a failure in its place. At most
    /// <paramref name="window"/> inputs are started and not yet yielded; the source is read only as room frees up. Leaving
    /// the enumeration early (or cancelling) stops the decoders and waits for them, so none runs unobserved.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired.</exception>
    public async IAsyncEnumerable<PreparedInput<T>> RunAsync<T>(IAsyncEnumerable<T> inputs, Func<T, float[], CancellationToken, Task> fill,
                                                              int window, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(fill);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var room = new SemaphoreSlim(window, window);
        var started = Channel.CreateUnbounded<(int Index, T Input, Task<float[]> Tensor)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(() => Produce(inputs, fill, room, started.Writer, stop.Token), stop.Token);
        try
        {
            while (await started.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (started.Reader.TryRead(out var item))
                {
                    PreparedInput<T> result;
                    try
                    {
                        result = new(item.Index, item.Input, await item.Tensor.ConfigureAwait(false), null);
                    }
                    catch (Exception e)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        result = new(item.Index, item.Input, null, e);
                    }
                    room.Release();
                    yield return result;
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await producer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            while (started.Reader.TryRead(out var item))
            {
                await ((Task)item.Tensor).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (item.Tensor.IsCompletedSuccessfully)
                    tensors.Return(item.Tensor.Result);
            }
        }
    }

    /// <summary>Reads the source as room frees up and starts each input's preparation, in order; ends the channel with the source's error.</summary>
    private async Task Produce<T>(IAsyncEnumerable<T> inputs, Func<T, float[], CancellationToken, Task> fill, SemaphoreSlim room,
                                  ChannelWriter<(int, T, Task<float[]>)> writer, CancellationToken stop)
    {
        Exception? error = null;
        var source = inputs.GetAsyncEnumerator(stop);
        try
        {
            for (int index = 0; ; index++)
            {
                await room.WaitAsync(stop).ConfigureAwait(false);
                if (!await source.MoveNextAsync().ConfigureAwait(false))
                    break;
                var input = source.Current;
                // Decoders are taken in the order asked for, so the oldest input, which the consumer waits on, goes first.
                writer.TryWrite((index, input, PrepareAsync((tensor, ct) => fill(input, tensor, ct), stop)));
            }
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            try
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                error ??= e;
            }
            writer.TryComplete(error);
        }
    }

}
