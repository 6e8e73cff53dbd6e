using ToMe.Imaging;
using ToMe.Merging;
using ToMe.Tests.Support;

namespace ToMe.Tests.Api;

/// <summary>The async, batch and streaming forms of the engine API: the same answers as the synchronous calls, cancellation, errors.</summary>
public sealed class AsyncApiTests : IDisposable
{
    private static readonly string[] Names = ["baseline_420_q90.jpg", "png_rgb.png", "bmp_rgb.bmp", "gray_q90.jpg", "tiny_420_q90.jpg"];
    private readonly string dir = Directory.CreateTempSubdirectory("tome-async-").FullName;
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static ToMeEngine Load(int maxBatch = 32) =>
        ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions
        {
            Backend = BackendKind.Cpu,
            Schedule = MergeSchedule.Constant(13),
            MaxBatchSize = maxBatch,
        });

    private static string Picture(string name) => RepoData.Path(Path.Combine("images", name));

    [Fact]
    public async Task EveryAsyncInputFormAnswersAsTheSynchronousCall()
    {
        using var engine = Load();
        var path = Picture("baseline_420_q90.jpg");
        var bytes = File.ReadAllBytes(path);
        var expected = engine.Classify(path, 3);
        Assert.Equal(expected, await engine.ClassifyAsync(path, 3, Token));
        Assert.Equal(expected, await engine.ClassifyAsync(bytes, 3, Token));
        using (var stream = File.OpenRead(path))
            Assert.Equal(expected, await engine.ClassifyAsync(stream, 3, Token));
        Assert.Equal(expected, await engine.ClassifyAsync(ImageDecoder.Decode(path), 3, Token));
        // A slice of a larger buffer, synchronously and not.
        var padded = new byte[bytes.Length + 20];
        bytes.CopyTo(padded, 7);
        var slice = new ReadOnlyMemory<byte>(padded, 7, bytes.Length);
        Assert.Equal(expected, engine.Classify(slice, 3));
        Assert.Equal(expected, await engine.ClassifyAsync(slice, 3, Token));
    }

    [Fact]
    public async Task ExtractFeaturesTakesWhatClassifyTakes()
    {
        using var engine = Load();
        var path = Picture("png_rgb.png");
        var bytes = File.ReadAllBytes(path);
        var expected = engine.ExtractFeatures(ImageDecoder.Decode(path));
        var all = new List<DenseFeatures>
        {
            engine.ExtractFeatures(path), engine.ExtractFeatures(bytes), engine.ExtractFeatures(new ReadOnlyMemory<byte>(bytes)),
            await engine.ExtractFeaturesAsync(path, Token), await engine.ExtractFeaturesAsync(bytes, Token),
            await engine.ExtractFeaturesAsync(ImageDecoder.Decode(path), Token),
        };
        using (var stream = File.OpenRead(path))
            all.Add(engine.ExtractFeatures(stream));
        using (var stream = File.OpenRead(path))
            all.Add(await engine.ExtractFeaturesAsync(stream, Token));
        foreach (var f in all)
        {
            Assert.Equal(expected.FinalTokens, f.FinalTokens);
            Assert.Equal(expected.Tokens, f.Tokens);
            Assert.Equal(expected.Groups, f.Groups);
            Assert.Equal(expected.PatchGrid, f.PatchGrid);
        }
    }

    [Fact]
    public async Task LoadAsyncGivesTheSameEngineAndHonoursCancellation()
    {
        using var engine = Load();
        using var loaded = await ToMeEngine.LoadAsync(Fixtures.ModelPath("vit_p14_d3"), engine.Options, cancellationToken: Token);
        Assert.Equal(engine.Classify(Picture("png_rgb.png")), loaded.Classify(Picture("png_rgb.png")));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ToMeEngine.LoadAsync(Fixtures.ModelPath("vit_p14_d3"), cancellationToken: new CancellationToken(true)));
        var missing = Path.Combine(dir, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k");
        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => ToMeEngine.LoadAsync(missing, cancellationToken: Token));
        Assert.Contains("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", e.Message);
    }

    [Fact]
    public async Task CancellationStopsAReadThatHasNotFinished()
    {
        using var engine = Load();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => engine.ClassifyAsync(Picture("png_rgb.png"), cancellationToken: new CancellationToken(true)));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Token);
        cts.CancelAfter(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => engine.ClassifyAsync(new NeverEndingStream(), cancellationToken: cts.Token));
        // The engine still answers.
        Assert.Single(await engine.ClassifyAsync(Picture("png_rgb.png"), 1, Token));
    }

    [Fact]
    public async Task ADisposedEngineRefusesAsyncWork()
    {
        var engine = Load();
        engine.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.ClassifyAsync(Picture("png_rgb.png"), cancellationToken: Token));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () =>
        {
            await foreach (var _ in engine.ClassifyManyAsync([Picture("png_rgb.png")], cancellationToken: Token))
            {
            }
        });
        // Refused before the input is read: a stream of inputs that all fail to read ends with the disposal, not their errors.
        var missing = Path.Combine(dir, "missing.jpg");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.ClassifyAsync(missing, cancellationToken: Token));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.ExtractFeaturesAsync(new byte[] { 1, 2, 3 }, Token));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () =>
        {
            await foreach (var _ in engine.ClassifyManyAsync([missing, missing], cancellationToken: Token))
            {
            }
        });
    }

    [Fact]
    public async Task AMissingFileIsAFileNotFoundExceptionEverywhere()
    {
        using var engine = Load();
        var missing = Path.Combine(dir, "cat.jpg");
        Assert.Throws<FileNotFoundException>(() => engine.Classify(missing));
        Assert.Throws<FileNotFoundException>(() => engine.ClassifyBatch([Picture("png_rgb.png"), missing]));
        Assert.Throws<FileNotFoundException>(() => engine.ExtractFeatures(missing));
        await Assert.ThrowsAsync<FileNotFoundException>(() => engine.ClassifyAsync(missing, cancellationToken: Token));
        await Assert.ThrowsAsync<FileNotFoundException>(() => engine.ExtractFeaturesAsync(missing, Token));
        await foreach (var r in engine.ClassifyManyAsync([missing], cancellationToken: Token))
            Assert.IsType<FileNotFoundException>(r.Error);
        Assert.Throws<FileNotFoundException>(() => engine.Classify(dir));
        Assert.Throws<FileNotFoundException>(() => ToMeEngine.Load(Path.Combine(dir, "no-model")));
    }

    [Fact]
    public void ClassifyBatchTakesAnySequence()
    {
        using var engine = Load(maxBatch: 2);
        var expected = Names.Select(n => engine.Classify(Picture(n), 2)).ToList();
        Assert.Equal(expected, engine.ClassifyBatch(Lazily(Names.Select(Picture)), 2));
        Assert.Equal(expected, engine.ClassifyBatch(Lazily(Names.Select(n => ImageDecoder.Decode(Picture(n)))), 2));
        Assert.Empty(engine.ClassifyBatch(Enumerable.Empty<string>()));

        static IEnumerable<T> Lazily<T>(IEnumerable<T> items)
        {
            foreach (var item in items)
                yield return item;
        }
    }

    [Fact]
    public async Task ClassifyManyStreamsResultsInInputOrderWithFailuresInPlace()
    {
        using var engine = Load(maxBatch: 2);
        var corrupt = Path.Combine(dir, "corrupt.png");
        File.WriteAllBytes(corrupt, [137, 80, 78, 71, 13, 10, 26, 10, 0, 0]);
        var missing = Path.Combine(dir, "missing.jpg");
        var paths = Names.Select(Picture).Take(2).Append(corrupt).Concat(Names.Select(Picture).Skip(2)).Append(missing).Append(Picture(Names[0])).ToArray();

        var results = new List<ImageClassification<string>>();
        await foreach (var r in engine.ClassifyManyAsync(paths, topK: 3, maxDegreeOfParallelism: 3, cancellationToken: Token))
            results.Add(r);

        Assert.Equal(Enumerable.Range(0, paths.Length), results.Select(r => r.Index));
        Assert.Equal(paths, results.Select(r => r.Input));
        for (int i = 0; i < paths.Length; i++)
        {
            if (paths[i] == corrupt)
                Assert.IsType<InvalidImageException>(results[i].Error);
            else if (paths[i] == missing)
                Assert.IsType<FileNotFoundException>(results[i].Error);
            else
                Assert.Equal(engine.Classify(paths[i], 3), results[i].Predictions);
            Assert.Equal(results[i].Error is null, results[i].Succeeded);
        }
    }

    [Fact]
    public async Task ClassifyManyDecodesInParallelWithinItsBounds()
    {
        const int maxBatch = 4, parallelism = 3, count = 40;
        using var engine = Load(maxBatch);
        var image = ImageDecoder.Decode(Picture("tiny_420_q90.jpg"));
        int pulled = 0, active = 0, peak = 0;
        var results = new List<ImageClassification<int>>();
        await foreach (var r in engine.ClassifyManyAsync(Source(), Decode, 1, parallelism, Token))
        {
            if (results.Count == 0)
                // The batch that runs, the next one when it has decoded, and the window decoding ahead.
                Assert.InRange(Volatile.Read(ref pulled), maxBatch, 3 * maxBatch + parallelism);
            results.Add(r);
        }
        Assert.Equal(Enumerable.Range(0, count), results.Select(r => r.Input));
        Assert.All(results, r => Assert.True(r.Succeeded));
        Assert.InRange(peak, 1, parallelism);
        Assert.Equal(engine.Classify(image, 1), results[^1].Predictions);

        IEnumerable<int> Source()
        {
            for (int i = 0; i < count; i++)
            {
                Interlocked.Increment(ref pulled);
                yield return i;
            }
        }

        async Task<RgbImage> Decode(int input, CancellationToken ct)
        {
            int now = Interlocked.Increment(ref active);
            InterlockedMax(ref peak, now);
            await Task.Delay(5, ct);
            Interlocked.Decrement(ref active);
            return image;
        }
    }

    [Fact]
    public async Task ClassifyManyStopsItsDecodersWhenCancelledOrLeftEarly()
    {
        using var engine = Load(maxBatch: 2);
        var image = ImageDecoder.Decode(Picture("tiny_420_q90.jpg"));
        int active = 0;
        async Task<RgbImage> Decode(int input, CancellationToken ct)
        {
            Interlocked.Increment(ref active);
            try
            {
                if (input >= 2)
                    await Task.Delay(Timeout.Infinite, ct); // only cancellation ends these
                return image;
            }
            finally
            {
                Interlocked.Decrement(ref active);
            }
        }

        // Left early: after the first result, no decoder may be left running.
        await foreach (var r in engine.ClassifyManyAsync(Enumerable.Range(0, 100), Decode, 1, 4, Token))
        {
            Assert.True(r.Succeeded);
            break;
        }
        Assert.Equal(0, Volatile.Read(ref active));

        // Cancelled while the next segment waits on decoders that never finish.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Token);
        var seen = new List<int>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var r in engine.ClassifyManyAsync(Enumerable.Range(0, 100), Decode, 1, 4, cts.Token))
            {
                seen.Add(r.Input);
                cts.CancelAfter(TimeSpan.FromMilliseconds(50));
            }
        });
        Assert.Equal([0, 1], seen);
        Assert.Equal(0, Volatile.Read(ref active));
    }

    [Fact]
    public async Task ClassifyManyReadsAnAsynchronousSource()
    {
        using var engine = Load(maxBatch: 3);
        var results = new List<ImageClassification<string>>();
        await foreach (var r in engine.ClassifyManyAsync(Source(), (p, ct) => ImageDecoder.DecodeAsync(p, null, ct), 2, cancellationToken: Token))
            results.Add(r);
        Assert.Equal(Names.Select(n => engine.Classify(Picture(n), 2)), results.Select(r => r.Predictions));

        static async IAsyncEnumerable<string> Source()
        {
            foreach (var name in Names)
            {
                await Task.Yield();
                yield return Picture(name);
            }
        }
    }

    [Fact]
    public void BadArgumentsThrowAtTheCall()
    {
        using var engine = Load();
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = engine.ClassifyAsync(Picture("png_rgb.png"), topK: 0, Token); });
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.ClassifyManyAsync([Picture("png_rgb.png")], topK: 0, cancellationToken: Token));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.ClassifyManyAsync([Picture("png_rgb.png")], maxDegreeOfParallelism: -1, cancellationToken: Token));
        Assert.Throws<ArgumentNullException>(() => { _ = engine.ClassifyAsync((string)null!, cancellationToken: Token); });
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    /// <summary>A stream whose reads wait until cancelled.</summary>
    private sealed class NeverEndingStream : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => 0; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("synchronous read");
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }
    }
}
