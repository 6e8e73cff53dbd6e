using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;
using ToMe.Model;

namespace ToMe.Serving;

/// <summary>Which engines an <see cref="EnginePool"/> loads.</summary>
public sealed class EnginePoolOptions
{
    /// <summary>
    /// CUDA devices to use: one engine per device. Null (the default) uses every device the driver reports, or none when
    /// <see cref="EngineOptions.Backend"/> is <see cref="BackendKind.Cpu"/>; an empty list uses none.
    /// </summary>
    public IReadOnlyList<int>? CudaDevices { get; set; }

    /// <summary>CPU engines besides the GPU ones; each gets an equal share of the cores unless <see cref="EngineOptions.Threads"/> is set.</summary>
    public int CpuEngines { get; set; }
}

/// <summary>
/// Several <see cref="BatchingClassifier"/>s serving one model (typically one per GPU, plus optional CPU engines), each with
/// its own queue and forward thread. Each request goes to the member with the fewest requests outstanding, so a faster
/// member naturally takes more. A member without a usable engine (<see cref="BatchingClassifier.Fault"/>: its GPU context was
/// lost and no fresh engine could be built yet) gets requests only when every member is in that state. A GPU member of a
/// pool built by <see cref="Load"/> replaces an engine whose context was lost by one loaded afresh from the model.
/// Thread-safe; disposing the pool disposes its members (see <see cref="BatchingClassifier.Dispose"/>).
/// </summary>
public sealed class EnginePool : IImageClassifier, IDisposable, IAsyncDisposable
{
    private readonly BatchingClassifier[] members;
    private readonly bool ownsMembers;
    private int next;

    /// <param name="members">At least one classifier; they should serve the same model.</param>
    /// <param name="ownsMembers">Dispose the members with the pool.</param>
    public EnginePool(IEnumerable<BatchingClassifier> members, bool ownsMembers = true)
    {
        ArgumentNullException.ThrowIfNull(members);
        this.members = members.ToArray();
        if (this.members.Length == 0)
            throw new ArgumentException("an engine pool needs at least one member", nameof(members));
        this.ownsMembers = ownsMembers;
    }

    /// <summary>
    /// Loads <paramref name="model"/> once and builds one engine per selected CUDA device plus
    /// <see cref="EnginePoolOptions.CpuEngines"/> CPU engines. With no GPU and no CPU engines asked for, the pool has one
    /// member built from <paramref name="engine"/> as given (auto picks CUDA device <see cref="EngineOptions.Device"/> or the CPU).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="model"/> is null or blank, or an option is out of range (as <see cref="ToMeEngine.Load(string, EngineOptions?)"/>).</exception>
    /// <exception cref="FileNotFoundException">No model at <paramref name="model"/>.</exception>
    /// <exception cref="Weights.InvalidModelException">The model's files are not a model the engine runs, or exceed <see cref="EngineOptions.ModelLimits"/>.</exception>
    /// <exception cref="NotSupportedException"><see cref="BackendKind.Cuda"/> (or a half precision) and no usable CUDA device.</exception>
    public static EnginePool Load(string model, EngineOptions? engine = null, BatchingOptions? batching = null, EnginePoolOptions? pool = null,
                                  ServingMetrics? metrics = null, ILoggerFactory? loggers = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        engine ??= new EngineOptions();
        engine.Validate();
        pool ??= new EnginePoolOptions();
        if (pool.CpuEngines < 0)
            throw new ArgumentOutOfRangeException(nameof(pool), pool.CpuEngines, "CpuEngines must be 0 or more");
        loggers ??= NullLoggerFactory.Instance;
        var log = loggers.CreateLogger<EnginePool>();
        var weights = ModelLoader.Load(model, engine.ModelLimits);
        // int8 runs on the CPU only: unless devices are named (and then refused clearly), the pool uses none.
        var devices = pool.CudaDevices ?? (engine.Backend, engine.Precision) switch
        {
            (BackendKind.Cpu, _) or (_, Precision.Int8) => [],
            (BackendKind.Auto, _) when CudaDriver.IsEmulated => [],   // auto never picks the emulated test device
            _ => CudaDevices(),
        };
        // Cuda asked for and no device found: the error ToMeEngine.Load gives, not a pool of CPU engines.
        if (devices.Count == 0 && engine.Backend == BackendKind.Cuda && pool.CudaDevices is null)
            ToMeEngine.Create(weights, engine).Dispose();
        var built = new List<BatchingClassifier>();
        try
        {
            foreach (var device in devices)
                built.Add(Member(weights, engine with { Backend = BackendKind.Cuda, Device = device }, replaceable: true));
            int cpuThreads = engine.Threads > 0 ? engine.Threads : Math.Max(1, Environment.ProcessorCount / Math.Max(1, pool.CpuEngines));
            for (int i = 0; i < pool.CpuEngines; i++)
                built.Add(Member(weights, engine with { Backend = BackendKind.Cpu, Threads = cpuThreads }));
            if (built.Count == 0)
                built.Add(Member(weights, engine));
        }
        catch
        {
            foreach (var m in built)
                m.Dispose();
            throw;
        }
        return new EnginePool(built);

        BatchingClassifier Member(ModelWeights w, EngineOptions o, bool replaceable = false)
        {
            var e = ToMeEngine.Create(w, o);
            log.LogInformation("engine {Index}: {Model} on {Backend}, {Precision}", built.Count, e.Config.Architecture, e.BackendName, e.Precision.Name());
            // Read again from the model rather than kept: the host copy of the weights is not held for a rare event.
            return new BatchingClassifier(e, batching, ownsEngine: true, metrics, loggers.CreateLogger<BatchingClassifier>(),
                replaceable ? () => ToMeEngine.Create(ModelLoader.Load(model, o.ModelLimits), o) : null);
        }
    }

    private static int[] CudaDevices()
    {
        if (!CudaDriver.TryInitialize(out _))
            return [];
        try
        {
            return Enumerable.Range(0, CudaDriver.DeviceCount()).ToArray();
        }
        catch (Exception e) when (e is CudaException or DllNotFoundException or EntryPointNotFoundException)
        {
            return [];
        }
    }

    /// <summary>The classifiers requests are spread over.</summary>
    public IReadOnlyList<BatchingClassifier> Members => members;

    /// <inheritdoc/>
    /// <remarks>The members' descriptions, comma-separated.</remarks>
    public string Description => string.Join(", ", members.Select(m => m.Description));

    /// <inheritdoc/>
    public Model.ModelConfig Model => members[0].Model;

    /// <summary>The first member's <see cref="BatchingClassifier.Fault"/> when no member can classify; null while one can.</summary>
    public Exception? Fault => members.All(m => m.Fault is not null) ? members[0].Fault : null;

    /// <summary>Requests outstanding over all members.</summary>
    public int Outstanding => members.Sum(m => m.Outstanding);

    /// <inheritdoc/>
    public Task<IReadOnlyList<Prediction>> ClassifyAsync(ImageInput image, int topK = 5, CancellationToken cancellationToken = default) =>
        Pick().ClassifyAsync(image, topK, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>The images go to one member, admitted together by its queue.</remarks>
    public IReadOnlyList<Task<IReadOnlyList<Prediction>>> ClassifyGroup(IReadOnlyList<ImageInput> images, int topK = 5, CancellationToken cancellationToken = default) =>
        Pick().ClassifyGroup(images, topK, cancellationToken);

    private BatchingClassifier Pick()
    {
        // Scan from a rotating start so that ties (e.g. an idle pool) spread over the members instead of piling on the first.
        int start = (int)((uint)Interlocked.Increment(ref next) % (uint)members.Length);
        var best = members[start];
        for (int i = 1; i < members.Length; i++)
        {
            var m = members[(start + i) % members.Length];
            if ((m.Fault is null) != (best.Fault is null) ? m.Fault is null : m.Outstanding < best.Outstanding)
                best = m;
        }
        return best;
    }

    /// <summary>Disposes the members when the pool owns them (see the constructor; a pool from <see cref="Load"/> does), each as <see cref="BatchingClassifier.Dispose"/>.</summary>
    public void Dispose()
    {
        if (!ownsMembers)
            return;
        foreach (var m in members)
            m.Dispose();
    }

    /// <summary>As <see cref="Dispose"/>, without blocking the calling thread on the members' running batches.</summary>
    public ValueTask DisposeAsync() => new(Task.Run(Dispose));
}
