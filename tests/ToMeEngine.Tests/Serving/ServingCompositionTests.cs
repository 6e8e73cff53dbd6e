using Microsoft.Extensions.DependencyInjection;
using ToMe.Serving;

namespace ToMe.Tests.Serving;

/// <summary>The engine pool and the dependency-injection registration.</summary>
public sealed class ServingCompositionTests
{
    [Fact(Timeout = 60_000)]
    public async Task PoolSpreadsRequestsOverItsMembersWithUnchangedAnswers()
    {
        var encoded = ServingTestData.Encoded();
        using var reference = ServingTestData.LoadEngine();
        var expected = ServingTestData.Serial(reference, encoded, 10);
        await using var pool = EnginePool.Load(ServingTestData.ModelPath, new EngineOptions { Threads = 1 }, new BatchingOptions { MaxBatchSize = 4 },
            new EnginePoolOptions { CudaDevices = [], CpuEngines = 2 });
        Assert.Equal(2, pool.Members.Count);
        Assert.All(pool.Members, m => Assert.Equal("cpu", m.Engine.BackendName));
        var tasks = Enumerable.Range(0, 60).Select(i => (i, task: pool.ClassifyAsync(encoded[i % encoded.Length], 10))).ToList();
        foreach (var (i, task) in tasks)
            ServingTestData.AssertSame(expected[i % encoded.Length], await task, $"request {i}");
        Assert.All(pool.Members, m => Assert.True(m.Statistics.Completed > 0, "a member got no work"));
        Assert.Equal(60, pool.Members.Sum(m => m.Statistics.Completed));
    }

    [Fact(Timeout = 60_000)]
    public async Task AddToMeEngineRegistersAClassifierAndItsMetrics()
    {
        var services = new ServiceCollection();
        services.AddToMeEngine(o =>
        {
            o.Model = ServingTestData.ModelPath;
            o.Engine = new EngineOptions { Backend = BackendKind.Cpu };
            o.Batching.MaxBatchSize = 8;
        });
        var encoded = ServingTestData.Encoded();
        var expected = ServingTestData.SerialAnswers(5);
        await using (var provider = services.BuildServiceProvider())
        {
            var collector = provider.GetRequiredService<ServingMetricsCollector>();
            var classifier = provider.GetRequiredService<IImageClassifier>();
            Assert.Same(classifier, provider.GetRequiredService<IImageClassifier>());
            Assert.IsType<BatchingClassifier>(classifier);
            var answers = await Task.WhenAll(encoded.Select(b => classifier.ClassifyAsync(b)));
            for (int i = 0; i < encoded.Length; i++)
                ServingTestData.AssertSame(expected[i], answers[i], ServingTestData.ImageNames[i]);
            var snapshot = collector.Snapshot();
            Assert.Equal(encoded.Length, snapshot.Counters["tome.requests"]);
            Assert.Equal(encoded.Length, snapshot.Counters["tome.images"]);
            Assert.Equal(encoded.Length, snapshot.Histograms["tome.batch.size"].Sum);
            Assert.True(snapshot.Histograms["tome.forward.time"].Count >= 1);
        }
    }

    [Fact]
    public void AddToMeEngineWithoutAModelSaysSo()
    {
        var services = new ServiceCollection();
        services.AddToMeEngine(_ => { });
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IImageClassifier>());
        Assert.Contains("Model", e.Message);
    }
}
