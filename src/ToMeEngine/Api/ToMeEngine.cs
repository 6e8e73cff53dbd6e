using ToMe.Backends;
using ToMe.Imaging;
using ToMe.Model;
using ToMe.Weights;
using ToMe.Weights.Hub;

namespace ToMe;

/// <summary>
/// A timm ViT / DeiT ready to classify images: load once, call <see cref="Classify(string, int)"/> (or its async, batch and
/// streaming forms) from any thread. Decoding and preprocessing run on the calling thread (the thread pool for the async
/// forms); forward passes are serialized, one at a time per engine. Dispose to release the backend's memory.
/// </summary>
/// <remarks>
/// Errors, the same for every call that takes them: an image path where no file exists (missing, or a directory) is a
/// <see cref="FileNotFoundException"/>; bytes that are not a supported, intact image are an <see cref="InvalidImageException"/>
/// (naming the file when there is one); a model that is not there is a <see cref="FileNotFoundException"/> whose message
/// says how to get one; model files that do not describe a supported model are an <see cref="InvalidModelException"/>.
/// Calls on a disposed engine throw <see cref="ObjectDisposedException"/>. On the CUDA backend, a batch that does not fit the
/// GPU's memory is a <see cref="Backends.Cuda.CudaOutOfMemoryException"/> naming the batch and the memory, after which smaller
/// batches still run; an error that loses the GPU context (an illegal address) is a
/// <see cref="Backends.Cuda.CudaContextLostException"/>, after which the engine has released the device and every call throws
/// the same (create a new engine). Async calls honour their
/// <see cref="CancellationToken"/> until the forward pass starts (<see cref="OperationCanceledException"/>); a running
/// forward pass completes.
/// </remarks>
/// <example>
/// <code>
/// using var engine = ToMeEngine.Load("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k",
///     new EngineOptions { Schedule = MergeSchedule.Constant(13) });
/// foreach (var p in engine.Classify("cat.jpg", topK: 5))
///     Console.WriteLine($"{p.Label}: {p.Probability:P1}");
/// </code>
/// </example>
public sealed partial class ToMeEngine : IDisposable
{
    private readonly IBackend backend;
    private readonly ForwardPass pass;
    private readonly Preprocessor preprocessor;
    private readonly ForwardOptions forwardOptions;
    // Classification needs the logits alone: sizes and groups stay on the device.
    private readonly ForwardOptions logitsOnly;
    // A semaphore rather than a lock, so async callers wait for the running forward pass without holding a thread.
    private readonly SemaphoreSlim gate = new(1, 1);
    private volatile bool disposed; // set under the gate; also read before a call reads its input

    /// <summary>The model's configuration (architecture, preprocessing, labels).</summary>
    public ModelConfig Config { get; }

    /// <summary>The options this engine was loaded with.</summary>
    public EngineOptions Options { get; }

    /// <summary>The backend running the forward pass: "cpu" or "cuda".</summary>
    public string BackendName => backend.Name;

    /// <summary>
    /// The hardware the forward pass runs on, in words, for logs: the processor, the threads and vector instructions used
    /// (e.g. "AMD EPYC 9B14 (2 threads, AVX-512)"), or the GPU, its CUDA ordinal, architecture and memory (e.g.
    /// "NVIDIA H200 (cuda:0, sm_90, 140 GiB)").
    /// </summary>
    public string DeviceName => backend.DeviceName;

    /// <summary>How the CUDA backend's forwards ran (graphs captured, replayed, uncaptured), or null on the CPU.</summary>
    internal Backends.Cuda.Graphs.CudaGraphStatistics? CudaGraphStatistics => (backend as Backends.Cuda.Graphs.CudaGraphBackend)?.Statistics;

    /// <summary>The precision the forward pass runs in: <see cref="EngineOptions.Precision"/> with Auto resolved by the backend.</summary>
    public Precision Precision => pass.Precision;

    private ToMeEngine(ModelWeights weights, EngineOptions options)
    {
        Options = options;
        Config = weights.Config;
        preprocessor = new Preprocessor(Config.Preprocess);
        forwardOptions = new ForwardOptions
        {
            Schedule = options.Schedule,
            Strategy = options.Merge,
            ProportionalAttention = options.ProportionalAttention,
        };
        logitsOnly = forwardOptions with { ReturnMerges = false };
        // A schedule this model cannot run fails here, before the backend and weights are set up, not at the first forward.
        options.Merge.Plan(options.Schedule, Config.Depth, Config.Tokens, Config.PrefixTokens);
        backend = BackendFactory.Create(options.Backend switch
        {
            BackendKind.Cpu => "cpu",
            BackendKind.Cuda => "cuda",
            _ => "auto",
        }, options.Threads, options.Device, options.Precision, options.CudaGraphs);
        try
        {
            GpuMemoryBudget.Check(Config, options, backend.Name);
            BatchLimits.Check(backend, Config, options.MaxBatchSize, paramName: nameof(EngineOptions.MaxBatchSize));
            pass = new ForwardPass(backend, weights, options.Precision);
            if (options.WarmUp && !OnEmulatedDevice(backend))
            {
                try
                {
                    WarmUp();
                }
                catch
                {
                    pass.Dispose(); // e.g. out of device memory for the workspace: free the weights before the backend
                    throw;
                }
            }
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    // One pass at the batch the backend runs at once (the CPU backend: one image per thread), so that both ways a batch runs
    // (one image per thread, and a remainder as one group) have compiled code and buffers before the first call.
    /// <summary>Whether this engine runs on the emulated CUDA device (a test device: its timings say nothing about a GPU).</summary>
    internal bool OnEmulatedCuda => OnEmulatedDevice(backend);

    private static bool OnEmulatedDevice(IBackend backend) => backend switch
    {
        Backends.Cuda.CudaBackend cuda => cuda.Device.IsEmulated,
        ForwardingBackend forwarding => OnEmulatedDevice(forwarding.Inner),
        _ => false,
    };

    private void WarmUp()
    {
        int batch = Math.Clamp(backend.ImageConcurrency, 1, Options.MaxBatchSize);
        int s = Config.ImageSize;
        pass.Run(new float[batch * 3 * s * s], batch, forwardOptions);
        if (batch > 1)
            pass.Run(new float[3 * s * s], 1, forwardOptions);
        WarmedUp = true;
    }

    /// <summary>Whether loading ran the warm-up pass (tests).</summary>
    internal bool WarmedUp { get; private set; }

    /// <summary>
    /// Loads a model: a folder in timm's hub layout (config.json + model.safetensors), a .safetensors file with its
    /// configuration in <c>__metadata__.config</c>, or a hub name such as <c>timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k</c>
    /// (downloaded into the Hugging Face cache once; see <see cref="ModelSource"/>).
    /// </summary>
    /// <exception cref="FileNotFoundException">No model at <paramref name="model"/>, or a model folder lacks one of its two files.</exception>
    /// <exception cref="InvalidModelException">The files do not describe a supported model; the message names what is wrong.</exception>
    /// <exception cref="HubException">A hub name could not be fetched (offline, unknown repository, no access).</exception>
    /// <exception cref="NotSupportedException">The options ask for what this machine lacks (CUDA without a device, a precision not available).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (e.g. <see cref="EngineOptions.MaxBatchSize"/> &lt; 1).</exception>
    public static ToMeEngine Load(string model, EngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new EngineOptions();
        options.Validate();
        return new ToMeEngine(ModelLoader.Load(model, options.ModelLimits), options);
    }

    /// <summary>
    /// <see cref="Load"/> on the thread pool: a hub download reports to <paramref name="downloadProgress"/> and stops when
    /// <paramref name="cancellationToken"/> fires; reading the weights and building the backend then run to completion
    /// (an engine built after cancellation is disposed, and the task is cancelled).
    /// </summary>
    /// <exception cref="FileNotFoundException">No model at <paramref name="model"/>, or a model folder lacks one of its two files.</exception>
    /// <exception cref="InvalidModelException">The files do not describe a supported model; the message names what is wrong.</exception>
    /// <exception cref="HubException">A hub name could not be fetched (offline, unknown repository, no access).</exception>
    /// <exception cref="NotSupportedException">The options ask for what this machine lacks.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired.</exception>
    public static Task<ToMeEngine> LoadAsync(string model, EngineOptions? options = null, IProgress<HubProgress>? downloadProgress = null,
                                             CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new EngineOptions();
        options.Validate();
        return Task.Run(() =>
        {
            var local = ModelSource.Resolve(model, progress: downloadProgress, cancellationToken: cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            var engine = new ToMeEngine(ModelLoader.Load(local, options.ModelLimits), options);
            if (cancellationToken.IsCancellationRequested)
            {
                engine.Dispose();
                cancellationToken.ThrowIfCancellationRequested();
            }
            return engine;
        }, cancellationToken);
    }

    /// <summary>Builds an engine from weights already in memory (e.g. <see cref="ModelWeights.Random"/>).</summary>
    /// <exception cref="NotSupportedException">The options ask for what this machine lacks.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ToMeEngine Create(ModelWeights weights, EngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        options ??= new EngineOptions();
        options.Validate();
        return new ToMeEngine(weights, options);
    }

    /// <summary>Decodes nothing: preprocesses an image exactly as timm's eval transform does, into [3, S, S].</summary>
    public float[] Preprocess(RgbImage image) => preprocessor.Run(image);

    /// <summary>
    /// Decodes an image file held in memory and preprocesses it, into [3, S, S]: the same values as
    /// <c>Preprocess(ImageDecoder.Decode(encoded))</c>, faster, since a JPEG is decoded only as far as the crop reads.
    /// </summary>
    /// <exception cref="InvalidImageException">The bytes are not a supported, intact image.</exception>
    public float[] Preprocess(byte[] encoded) => preprocessor.Run(encoded ?? throw new ArgumentNullException(nameof(encoded)), Options.Decode);

    /// <summary>Reads an image file and preprocesses it as <see cref="Preprocess(byte[])"/> does.</summary>
    /// <exception cref="FileNotFoundException">No file exists at <paramref name="path"/> (or it is a directory).</exception>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image; the message starts with the path.</exception>
    public float[] Preprocess(string path) => ImageDecoder.ReadFile(path, Options.Decode, Preprocess);

    /// <summary>Runs the forward pass on preprocessed images [B, 3, S, S] and returns the logits [B, classes].</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batch"/> exceeds <see cref="EngineOptions.MaxBatchSize"/>.</exception>
    /// <exception cref="ArgumentException">A value is not finite or beyond ±1e4 (no normalized pixel is).</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public float[] Logits(ReadOnlySpan<float> images, int batch) => Forward(CheckedImages(images), batch, logitsOnly).Logits;

    /// <summary>
    /// <see cref="Logits(ReadOnlySpan{float}, int)"/> told the images of the batch that runs next (unchanged until then): the
    /// CUDA backend uploads them while this batch runs, and uses that upload when the next forward's images are
    /// <paramref name="next"/> itself (the same memory object, not only the same address).
    /// </summary>
    internal float[] Logits(ReadOnlyMemory<float> images, int batch, ReadOnlyMemory<float> next) =>
        Forward(images.Span, batch, logitsOnly, next, images).Logits;

    /// <summary>Whether the backend uses the next batch's images given to a forward (see <see cref="ForwardPass.TakesNextBatch"/>).</summary>
    internal bool TakesNextBatch => pass.TakesNextBatch;

    /// <summary>The full forward result (logits, tokens per layer, sizes, groups; final tokens when asked).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batch"/> exceeds <see cref="EngineOptions.MaxBatchSize"/>.</exception>
    /// <exception cref="ArgumentException">A value is not finite or beyond ±1e4 (no normalized pixel is).</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public ForwardResult Forward(ReadOnlySpan<float> images, int batch, bool returnTokens = false) =>
        Forward(CheckedImages(images), batch, ForwardOptionsFor(returnTokens));

    // Images a caller preprocessed; the engine's own preprocessing needs no check.
    private ReadOnlySpan<float> CheckedImages(ReadOnlySpan<float> images)
    {
        PreprocessedCheck.Check(images, 3 * Config.ImageSize * Config.ImageSize, nameof(images));
        return images;
    }

    /// <summary>The engine's options with another merge schedule, for one call (see <see cref="MergeInspection"/>).</summary>
    internal ForwardOptions WithSchedule(Merging.MergeSchedule schedule) => forwardOptions with { Schedule = schedule };

    internal ForwardResult Forward(ReadOnlySpan<float> images, int batch, ForwardOptions options) => Forward(images, batch, options, default, default);

    private ForwardResult Forward(ReadOnlySpan<float> images, int batch, ForwardOptions options, ReadOnlyMemory<float> next, ReadOnlyMemory<float> imagesMemory)
    {
        CheckBatch(batch);
        gate.Wait();
        try
        {
            return RunPass(images, batch, options, next, imagesMemory);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// <see cref="Forward(ReadOnlySpan{float}, int, bool)"/> on the thread pool: waits for the running forward pass without holding a thread, and stops
    /// waiting when <paramref name="cancellationToken"/> fires; once this pass starts, it completes. <paramref name="next"/>: the
    /// images of the batch that runs next, when known (unchanged until then; see <see cref="ForwardPass.Run"/>).
    /// </summary>
    private Task<ForwardResult> ForwardAsync(ReadOnlyMemory<float> images, int batch, bool returnTokens, CancellationToken cancellationToken,
        ReadOnlyMemory<float> next = default)
    {
        CheckBatch(batch);
        var options = returnTokens ? ForwardOptionsFor(true) : logitsOnly;
        return Task.Run(async () =>
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfUnusable();
                cancellationToken.ThrowIfCancellationRequested();
                return RunPass(images.Span, batch, options, next, images);
            }
            finally
            {
                gate.Release();
            }
        }, cancellationToken);
    }

    // Under the gate. A GPU error that loses the context (an illegal address, a device-side assert) fails every later call
    // in it: the engine says so, releases its device memory at once, and refuses further work with the same explanation.
    // `imagesMemory`: where `images` come from, when the caller has it as memory (to recognize the batch announced ahead).
    private ForwardResult RunPass(ReadOnlySpan<float> images, int batch, ForwardOptions options, ReadOnlyMemory<float> next,
        ReadOnlyMemory<float> imagesMemory)
    {
        ThrowIfUnusable();
        // An upload started ahead belongs to the caller that announced the batch, and is used only when that very memory
        // runs next. Its caller may leave instead (an enumeration left early, cancelled or failed); its pinned memory is
        // then freed, and the next pinned array of that size often lands at the same address holding other images, which
        // the backend (matching by address) would take for the stale upload.
        bool announcedRuns = !announced.IsEmpty && imagesMemory.Equals(announced);
        announced = default;
        if (!announcedRuns)
            pass.ForgetNext();
        try
        {
            var result = pass.Run(images, batch, options, null, next.Span);
            announced = next;
            return result;
        }
        catch (Backends.Cuda.Native.CudaException e) when (backend.Name == "cuda" && Backends.Cuda.CudaFaults.ContextLost(e, out var cause))
        {
            contextLost = cause;
            disposed = true;
            try
            {
                pass.Dispose();
                backend.Dispose();
            }
            catch (Backends.Cuda.Native.CudaException)
            {
                // Releasing in a lost context may fail; the driver frees everything when the context resets.
            }
            throw new Backends.Cuda.CudaContextLostException(cause, Config.Architecture);
        }
    }

    private Backends.Cuda.Native.CudaException? contextLost;

    // The batch the last forward announced as the next one (under the gate).
    private ReadOnlyMemory<float> announced;

    private void ThrowIfUnusable()
    {
        if (contextLost is not null)
            throw new Backends.Cuda.CudaContextLostException(contextLost, Config.Architecture);
        ObjectDisposedException.ThrowIf(disposed, this);
    }

    private ForwardOptions ForwardOptionsFor(bool returnTokens) => returnTokens ? forwardOptions with { ReturnTokens = true } : forwardOptions;

    private void CheckBatch(int batch)
    {
        // Activations scale with the batch; the limit is what GpuMemoryBudgetBytes was checked against.
        if (batch > Options.MaxBatchSize)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, $"exceeds EngineOptions.MaxBatchSize ({Options.MaxBatchSize}); split the input or use ClassifyBatch");
    }

    /// <summary>The k most probable classes of one row of logits (softmax in double), most probable first, lower index on ties.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is below 1.</exception>
    /// <exception cref="ArithmeticException">A logit is NaN or infinite: no probability can be given.</exception>
    public IReadOnlyList<Prediction> TopK(ReadOnlySpan<float> logits, int topK)
    {
        CheckTopK(topK);
        CheckFinite(logits);
        double max = double.NegativeInfinity;
        foreach (var v in logits)
            max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in logits)
            sum += Math.Exp(v - max);
        var order = new int[logits.Length];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        var copy = logits.ToArray();
        Array.Sort(order, (a, b) => copy[b].CompareTo(copy[a]) is var c && c != 0 ? c : a.CompareTo(b));
        var labels = Config.LabelNames;
        return order.Take(Math.Min(topK, order.Length))
            .Select(i => new Prediction(i, labels is not null ? labels[i] : $"class {i}", (float)(Math.Exp(copy[i] - max) / sum)))
            .ToArray();
    }

    /// <summary>
    /// Float32 overflows only on inputs far outside a preprocessed image's range (a decoded image's pixels are normalized to
    /// a few units), so a non-finite logit means the input, or the model's weights, hold absurd values; the answer says so
    /// instead of NaN probabilities or an arbitrary order.
    /// </summary>
    private static void CheckFinite(ReadOnlySpan<float> logits)
    {
        for (int i = 0; i < logits.Length; i++)
            if (!float.IsFinite(logits[i]))
                throw new ArithmeticException($"the forward pass gave a non-finite logit (class {i}: {logits[i].ToString(System.Globalization.CultureInfo.InvariantCulture)}): the input's values are too large " +
                                              "for float32 (a preprocessed image's are a few units), or the model's weights hold non-finite values");
    }

    private static void CheckTopK(int topK)
    {
        if (topK < 1)
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "must be at least 1");
    }

    /// <summary>Waits for a running forward pass, then releases the backend; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        gate.Wait();
        try
        {
            if (disposed)
                return;
            disposed = true;
            pass.Dispose();
            backend.Dispose();
        }
        finally
        {
            gate.Release();
        }
    }
}
