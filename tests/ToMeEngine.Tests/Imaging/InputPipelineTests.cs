using ToMe.Imaging;
using ToMe.Serving;
using ToMe.Tests.Support;

namespace ToMe.Tests.Imaging;

/// <summary>
/// The input pipeline: every entry point decodes on every core at once (observed: as many decoders as cores inside a
/// decoder at the same moment, each on its own thread), the source is read no further ahead than the window, order holds.
/// </summary>
public sealed class InputPipelineTests : IDisposable
{
    private static readonly int Cores = Environment.ProcessorCount;
    private readonly string dir = Directory.CreateTempSubdirectory("tome-pipeline-").FullName;
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>
    /// A decoder for GIF bytes whose first <c>parties</c> calls block until that many are inside at once (a barrier, with a
    /// timeout so that a pipeline that runs fewer fails instead of hanging); it records the threads they ran on.
    /// </summary>
    private sealed class BarrierDecoder(int parties) : IExternalImageDecoder, IDisposable
    {
        private readonly Barrier barrier = new(parties);
        private readonly HashSet<int> threads = [];
        private int calls, inside, peak;

        public string Name => "barrier";

        public bool Met { get; private set; }

        public int Peak => Volatile.Read(ref peak);

        /// <summary>Distinct threads the first <c>parties</c> calls ran on.</summary>
        public int Threads
        {
            get
            {
                lock (threads)
                    return threads.Count;
            }
        }

        public bool CanDecode(ImageFormat format) => format == ImageFormat.Gif;

        public RgbImage Decode(byte[] data, ImageFormat format, DecodeOptions options)
        {
            int now = Interlocked.Increment(ref inside);
            for (int seen; (seen = Volatile.Read(ref peak)) < now && Interlocked.CompareExchange(ref peak, now, seen) != seen;)
            {
            }
            try
            {
                if (Interlocked.Increment(ref calls) <= parties)
                {
                    lock (threads)
                        threads.Add(Environment.CurrentManagedThreadId);
                    // A blocking wait: each party holds its thread, so `parties` of them inside at once are `parties` threads.
                    if (barrier.SignalAndWait(TimeSpan.FromSeconds(20)))
                        Met = true;
                }
                return Picture();
            }
            finally
            {
                Interlocked.Decrement(ref inside);
            }
        }

        public void Dispose() => barrier.Dispose();
    }

    private static RgbImage Picture()
    {
        var image = new RgbImage(40, 30);
        for (int i = 0; i < image.Pixels.Length; i++)
            image.Pixels[i] = (byte)(i * 7);
        return image;
    }

    private static readonly byte[] Gif = "GIF89a"u8.ToArray().Concat(new byte[32]).ToArray();

    private ToMeEngine Engine(IExternalImageDecoder decoder, int maxBatch = 4) =>
        ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions
        {
            Backend = BackendKind.Cpu,
            MaxBatchSize = maxBatch,
            Threads = 1,
            Decode = DecodeOptions.Default with { ExternalDecoders = [decoder] },
        });

    private string[] GifFiles(int count)
    {
        var paths = Enumerable.Range(0, count).Select(i => Path.Combine(dir, $"{i:D3}.gif")).ToArray();
        foreach (var path in paths)
            File.WriteAllBytes(path, Gif);
        return paths;
    }

    private static void AssertEveryCore(BarrierDecoder decoder, string where)
    {
        Assert.True(decoder.Met, $"{where}: {Cores} decoders were never inside the decoder at the same time (peak {decoder.Peak})");
        Assert.Equal(Cores, decoder.Peak);
        Assert.Equal(Cores, decoder.Threads);
    }

    [Fact]
    public async Task ClassifyManyDecodesOnEveryCore()
    {
        using var decoder = new BarrierDecoder(Cores);
        using var engine = Engine(decoder);
        var paths = GifFiles(3 * Cores + 2);
        int n = 0;
        await foreach (var result in engine.ClassifyManyAsync(paths, 1, cancellationToken: Token))
        {
            Assert.True(result.Succeeded, result.Error?.ToString());
            Assert.Equal(n++, result.Index);
        }
        Assert.Equal(paths.Length, n);
        AssertEveryCore(decoder, "ClassifyManyAsync");
    }

    [Fact]
    public void ClassifyBatchDecodesOnEveryCore()
    {
        using var decoder = new BarrierDecoder(Cores);
        using var engine = Engine(decoder);
        var paths = GifFiles(2 * Cores + 1);
        var results = engine.ClassifyBatch(paths, 1);
        Assert.Equal(paths.Length, results.Count);
        Assert.All(results, r => Assert.Equal(results[0], r));
        AssertEveryCore(decoder, "ClassifyBatch");
    }

    [Fact]
    public async Task TheBatchingServiceDecodesOnEveryCoreAndNoMore()
    {
        using var decoder = new BarrierDecoder(Cores);
        using var engine = Engine(decoder);
        using var service = new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = 4 }, ownsEngine: false);
        var requests = Enumerable.Range(0, 4 * Cores).Select(_ => service.ClassifyAsync(Gif, 1, Token)).ToArray();
        var results = await Task.WhenAll(requests);
        Assert.All(results, r => Assert.Equal(results[0], r));
        AssertEveryCore(decoder, "BatchingClassifier");
    }

    [Fact]
    public async Task TheBatchingServiceHoldsToItsDecodeParallelism()
    {
        using var decoder = new BarrierDecoder(parties: 1);
        using var engine = Engine(decoder);
        using var service = new BatchingClassifier(engine, new BatchingOptions { MaxBatchSize = 4, DecodeParallelism = 1 }, ownsEngine: false);
        await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => service.ClassifyAsync(Gif, 1, Token)));
        Assert.Equal(1, decoder.Peak);
    }

    [Fact]
    public async Task TheSourceIsReadNoFurtherThanTheWindowAndDecodingRunsAhead()
    {
        const int window = 5, count = 40;
        var pipeline = new InputPipeline(new Preprocessor(new PreprocessConfig { ImgSize = 28 }), parallelism: 3);
        var image = Picture();
        int pulled = 0, taken = 0, ahead = 0;

        var seen = new List<int>();
        await foreach (var item in pipeline.RunAsync(Source(), (i, tensor, _) =>
        {
            pipeline.Preprocessor.Run(image, tensor);
            return Task.CompletedTask;
        }, window, Token))
        {
            Assert.Null(item.Error);
            seen.Add(item.Input);
            pipeline.Return(item.Tensor!);
            Interlocked.Increment(ref taken);
            if (seen.Count == 1)
            {
                // The consumer is busy: decoding goes on until the window is full, and stops there.
                Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref pulled) >= window + 1, TimeSpan.FromSeconds(20)), "the pipeline did not decode ahead");
                await Task.Delay(50, Token);
            }
        }
        Assert.Equal(Enumerable.Range(0, count), seen);
        // Room frees just before an input is handed over, so one more may be read before `taken` counts it.
        Assert.InRange(ahead, window, window + 1);

        async IAsyncEnumerable<int> Source()
        {
            for (int i = 0; i < count; i++)
            {
                int now = Interlocked.Increment(ref pulled) - Volatile.Read(ref taken);
                ahead = Math.Max(ahead, now);
                await Task.Yield();
                yield return i;
            }
        }
    }
}
