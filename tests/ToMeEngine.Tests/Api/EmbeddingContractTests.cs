using ToMe.Imaging;
using ToMe.Serving;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Api;

/// <summary>
/// What an embedding service relies on: every bad option refused at load with its name, arguments refused at the call,
/// a batching classifier that never gathers more than its engine runs, and counts that are final once a call returns.
/// </summary>
public sealed class EmbeddingContractTests
{
    private static string Model => Fixtures.ModelPath("vit_p14_d3");

    private static EngineOptions Cpu => new() { Backend = BackendKind.Cpu, WarmUp = false };

    [Fact]
    public void BadOptionsAreRefusedAtLoadNamingThem()
    {
        Assert.Equal("Schedule", Assert.Throws<ArgumentNullException>(() => ToMeEngine.Load(Model, Cpu with { Schedule = null! })).ParamName);
        Assert.Equal("Merge", Assert.Throws<ArgumentNullException>(() => ToMeEngine.Load(Model, Cpu with { Merge = null! })).ParamName);
        Assert.Equal("Backend", Assert.Throws<ArgumentOutOfRangeException>(() => ToMeEngine.Load(Model, Cpu with { Backend = (BackendKind)42 })).ParamName);
        Assert.Equal("MaxPixels", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ToMeEngine.Load(Model, Cpu with { Decode = DecodeOptions.Default with { MaxPixels = 0 } })).ParamName);
        Assert.Equal("MaxFileBytes", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ToMeEngine.Load(Model, Cpu with { Decode = DecodeOptions.Default with { MaxFileBytes = -1 } })).ParamName);
        Assert.Equal("ExternalDecoders", Assert.Throws<ArgumentNullException>(() =>
            ToMeEngine.Load(Model, Cpu with { Decode = DecodeOptions.Default with { ExternalDecoders = [null!] } })).ParamName);
        // int8 on CUDA is refused for what it is, whether or not a device is there.
        Assert.Contains("int8 is CPU-only", Assert.Throws<NotSupportedException>(() =>
            ToMeEngine.Load(Model, Cpu with { Backend = BackendKind.Cuda, Precision = Precision.Int8 })).Message);
    }

    [Fact]
    public void APoolChecksLikeLoad()
    {
        Assert.Throws<ArgumentNullException>(() => EnginePool.Load(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => EnginePool.Load(Model, Cpu with { Threads = -1 }));
        // The model limits apply to the pool's read of the model too.
        var limits = Cpu with { ModelLimits = new ModelLimits { MaxHeaderBytes = 100 } };
        Assert.Throws<InvalidModelException>(() => ToMeEngine.Load(Model, limits));
        Assert.Throws<InvalidModelException>(() => EnginePool.Load(Model, limits, pool: new EnginePoolOptions { CpuEngines = 1 }));
    }

    [Fact]
    public void ArgumentsAreRefusedWhereTheyAreGiven()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RgbImage(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RgbImage(1 << 20, 1 << 20));
        using var engine = ToMeEngine.Load(Model, Cpu);
        var closed = new MemoryStream(File.ReadAllBytes(RepoData.Path(Path.Combine("images", "png_rgb.png"))));
        closed.Dispose();
        Assert.Contains("closed", Assert.Throws<ArgumentException>(() => engine.Classify(closed)).Message);

        using var classifier = new BatchingClassifier(engine, ownsEngine: false);
        // Thrown at the call, not in the task: the caller's mistake, as ToMeEngine.ClassifyAsync does.
        Assert.Throws<ArgumentNullException>(() => { _ = classifier.ClassifyAsync(null!, 5, TestContext.Current.CancellationToken); });
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = classifier.ClassifyAsync(ImageInput.FromTensor(new float[3 * 224 * 224]), 0, TestContext.Current.CancellationToken); });
    }

    [Fact(Timeout = 60_000)]
    public async Task ABatchingClassifierGathersNoMoreThanItsEngineRuns()
    {
        using var engine = ToMeEngine.Load(Model, Cpu with { MaxBatchSize = 4 });
        await using var classifier = new BatchingClassifier(engine,
            new BatchingOptions { MaxBatchSize = 32, MaxQueueDelay = TimeSpan.FromMilliseconds(200) }, ownsEngine: false);
        Assert.Equal(4, classifier.Options.MaxBatchSize);
        var sizes = new List<int>();
        classifier.BeforeForward = n => { lock (sizes) sizes.Add(n); };
        var chw = engine.Preprocess(ImageDecoder.Decode(RepoData.Path(Path.Combine("images", "png_rgb.png"))));
        var expected = engine.Classify(ImageDecoder.Decode(RepoData.Path(Path.Combine("images", "png_rgb.png"))), 3);
        var answers = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ =>
            classifier.ClassifyAsync(ImageInput.FromTensor(chw), 3, TestContext.Current.CancellationToken)));
        Assert.All(answers, a => Assert.Equal(expected, a));
        Assert.All(sizes, n => Assert.InRange(n, 1, 4));
        Assert.Equal(16, sizes.Sum());
    }

    [Fact(Timeout = 60_000)]
    public async Task CountsIncludeACallOnceItReturns()
    {
        using var engine = ToMeEngine.Load(Model, Cpu);
        await using var classifier = new BatchingClassifier(engine, ownsEngine: false);
        var image = ImageInput.FromTensor(new float[3 * 224 * 224]);
        for (int i = 1; i <= 20; i++)
        {
            await classifier.ClassifyAsync(image, 1, TestContext.Current.CancellationToken);
            Assert.Equal(i, classifier.Statistics.Completed);
        }
    }
}
