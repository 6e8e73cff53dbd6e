using ToMe.Backends;
using ToMe.Imaging;
using ToMe.Model;

namespace ToMe;

/// <summary>
/// A timm ViT / DeiT ready to classify images: load once, call <see cref="Classify(string, int)"/> from any thread.
/// Decoding and preprocessing run on the calling thread; forward passes are serialized (one at a time per engine).
/// Dispose to release the backend's memory.
/// </summary>
/// <example>
/// <code>
/// using var engine = ToMeEngine.Load("models/vit_tiny_patch16_224.augreg_in21k_ft_in1k",
///     new EngineOptions { Schedule = MergeSchedule.Constant(13) });
/// foreach (var p in engine.Classify("cat.jpg", topK: 5))
///     Console.WriteLine($"{p.Label}: {p.Probability:P1}");
/// </code>
/// </example>
public sealed class ToMeEngine : IDisposable
{
    private readonly IBackend backend;
    private readonly ForwardPass pass;
    private readonly Preprocessor preprocessor;
    private readonly ForwardOptions forwardOptions;
    private readonly object gate = new();
    private bool disposed;

    /// <summary>The model's configuration (architecture, preprocessing, labels).</summary>
    public ModelConfig Config { get; }

    /// <summary>The options this engine was loaded with.</summary>
    public EngineOptions Options { get; }

    /// <summary>The backend running the forward pass: "cpu" or "cuda".</summary>
    public string BackendName => backend.Name;

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
        backend = BackendFactory.Create(options.Backend switch
        {
            BackendKind.Cpu => "cpu",
            BackendKind.Cuda => "cuda",
            _ => "auto",
        }, options.Threads, options.Device, options.Precision);
        try
        {
            GpuMemoryBudget.Check(Config, options, backend.Name);
            BatchLimits.Check(backend, Config, options.MaxBatchSize, paramName: nameof(EngineOptions.MaxBatchSize));
            pass = new ForwardPass(backend, weights, options.Precision);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads a model: a folder in timm's hub layout (config.json + model.safetensors), a .safetensors file with its
    /// configuration in <c>__metadata__.config</c>, or a hub name such as <c>timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k</c>.
    /// </summary>
    /// <exception cref="Weights.InvalidModelException">The files do not describe a supported model; the message names what is wrong.</exception>
    public static ToMeEngine Load(string model, EngineOptions? options = null)
    {
        options ??= new EngineOptions();
        options.Validate();
        return new ToMeEngine(ModelLoader.Load(model, options.ModelLimits), options);
    }

    /// <summary>Builds an engine from weights already in memory (e.g. <see cref="ModelWeights.Random"/>).</summary>
    public static ToMeEngine Create(ModelWeights weights, EngineOptions? options = null)
    {
        options ??= new EngineOptions();
        options.Validate();
        return new ToMeEngine(weights, options);
    }

    /// <summary>Classifies an image file (JPEG, PNG, BMP, PPM/PGM).</summary>
    /// <exception cref="InvalidImageException">The file is not a supported, intact image.</exception>
    public IReadOnlyList<Prediction> Classify(string path, int topK = 5) => Classify(ImageDecoder.Decode(path, Options.Decode), topK);

    /// <summary>Classifies an encoded image held in memory.</summary>
    public IReadOnlyList<Prediction> Classify(byte[] encoded, int topK = 5) => Classify(ImageDecoder.Decode(encoded, Options.Decode), topK);

    /// <summary>Classifies an encoded image read from a stream (read to its end).</summary>
    public IReadOnlyList<Prediction> Classify(Stream encoded, int topK = 5) => Classify(ImageDecoder.Decode(encoded, Options.Decode), topK);

    /// <summary>Classifies decoded pixels.</summary>
    public IReadOnlyList<Prediction> Classify(RgbImage image, int topK = 5) => ClassifyBatch([image], topK)[0];

    /// <summary>Classifies several decoded images, in batches of at most <see cref="EngineOptions.MaxBatchSize"/>.</summary>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IReadOnlyList<RgbImage> images, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(images);
        var results = new List<IReadOnlyList<Prediction>>(images.Count);
        for (int start = 0; start < images.Count; start += Options.MaxBatchSize)
        {
            var chunk = images.Skip(start).Take(Options.MaxBatchSize).ToList();
            var logits = Logits(preprocessor.RunBatch(chunk), chunk.Count);
            for (int b = 0; b < chunk.Count; b++)
                results.Add(TopK(logits.AsSpan(b * Config.NumClasses, Config.NumClasses), topK));
        }
        return results;
    }

    /// <summary>Classifies several image files; a file that fails to decode throws before any forward pass runs.</summary>
    public IReadOnlyList<IReadOnlyList<Prediction>> ClassifyBatch(IReadOnlyList<string> paths, int topK = 5) =>
        ClassifyBatch(paths.Select(p => ImageDecoder.Decode(p, Options.Decode)).ToList(), topK);

    /// <summary>Decodes nothing: preprocesses an image exactly as timm's eval transform does, into [3, S, S].</summary>
    public float[] Preprocess(RgbImage image) => preprocessor.Run(image);

    /// <summary>Runs the forward pass on preprocessed images [B, 3, S, S] and returns the logits [B, classes].</summary>
    public float[] Logits(ReadOnlySpan<float> images, int batch) => Forward(images, batch).Logits;

    /// <summary>The full forward result (logits, tokens per layer, sizes, groups; final tokens when asked).</summary>
    public ForwardResult Forward(ReadOnlySpan<float> images, int batch, bool returnTokens = false)
    {
        // Activations scale with the batch; the limit is what GpuMemoryBudgetBytes was checked against.
        if (batch > Options.MaxBatchSize)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, $"exceeds EngineOptions.MaxBatchSize ({Options.MaxBatchSize}); split the input or use ClassifyBatch");
        var options = returnTokens ? forwardOptions with { ReturnTokens = true } : forwardOptions;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return pass.Run(images, batch, options);
        }
    }

    /// <summary>The k most probable classes of one row of logits (softmax in double), most probable first, lower index on ties.</summary>
    public IReadOnlyList<Prediction> TopK(ReadOnlySpan<float> logits, int topK)
    {
        if (topK < 1)
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "must be at least 1");
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

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
                return;
            disposed = true;
            pass.Dispose();
            backend.Dispose();
        }
    }
}
