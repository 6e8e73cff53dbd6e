using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using ToMe.Serving;
using ToMe.Serving.Http;

namespace ToMe.Tests.Serving;

/// <summary>The classifier as an ASP.NET Core health check in a host's own health checks.</summary>
public sealed class HealthCheckTests
{
    [Fact(Timeout = 60_000)]
    public async Task AWorkingClassifierIsHealthyAndAFaultedOneReportsItsFault()
    {
        var ct = TestContext.Current.CancellationToken;
        using var engine = ServingTestData.LoadEngine();
        var faulted = new Switchable(engine.Config);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IImageClassifier>(faulted);
        services.AddHealthChecks().AddToMeEngineCheck(tags: ["ready"]).AddToMeEngineCheck("tome-degraded", HealthStatus.Degraded);
        await using var provider = services.BuildServiceProvider();
        var health = provider.GetRequiredService<HealthCheckService>();

        var report = await health.CheckHealthAsync(ct);
        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Equal("switchable", report.Entries[ClassifierHealthCheck.DefaultName].Description);
        Assert.Equal("switchable", report.Entries[ClassifierHealthCheck.DefaultName].Data["classifier"]);
        Assert.Equal(["ready"], report.Entries[ClassifierHealthCheck.DefaultName].Tags);

        faulted.Fault = new InvalidOperationException("the GPU context was lost");
        report = await health.CheckHealthAsync(ct);
        Assert.Equal(HealthStatus.Unhealthy, report.Status);
        var entry = report.Entries[ClassifierHealthCheck.DefaultName];
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Equal("switchable cannot classify: the GPU context was lost", entry.Description);
        Assert.Same(faulted.Fault, entry.Exception);
        Assert.Equal(HealthStatus.Degraded, report.Entries["tome-degraded"].Status);

        faulted.Fault = null; // recovered (a pool rebuilt its engine)
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync(ct)).Status);
    }

    [Fact]
    public void TheCheckNeedsANameAndABuilder()
    {
        Assert.Throws<ArgumentNullException>(() => ClassifierHealthCheck.AddToMeEngineCheck(null!));
        Assert.Throws<ArgumentException>(() => new ServiceCollection().AddHealthChecks().AddToMeEngineCheck(" "));
    }

    private sealed class Switchable(ToMe.Model.ModelConfig model) : IImageClassifier
    {
        public string Description => "switchable";
        public ToMe.Model.ModelConfig Model => model;
        public Exception? Fault { get; set; }

        public Task<IReadOnlyList<Prediction>> ClassifyAsync(ImageInput image, int topK = 5, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();
    }
}
