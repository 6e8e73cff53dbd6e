using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ToMe.Serving.Http;

/// <summary>
/// The classifier as an ASP.NET Core health check, for a host that serves its own endpoints and health routes
/// (<c>app.MapHealthChecks("/healthz")</c>): healthy while the registered <see cref="IImageClassifier"/> can classify,
/// otherwise the failure status with its <see cref="IImageClassifier.Fault"/> (e.g. an engine that lost its GPU context
/// and could not be rebuilt yet). The check only reads state: it runs no forward pass, so probes cost nothing.
/// </summary>
public static class ClassifierHealthCheck
{
    /// <summary>The name the check is registered under unless another is given.</summary>
    public const string DefaultName = "tome";

    /// <summary>
    /// Adds the check of the <see cref="IImageClassifier"/> registered in the container (by
    /// <see cref="ServiceCollectionExtensions.AddToMeEngine(IServiceCollection, Action{ToMeServingOptions})"/> or the host).
    /// </summary>
    /// <param name="builder">The host's health checks (<c>services.AddHealthChecks()</c>).</param>
    /// <param name="name">The check's name in reports.</param>
    /// <param name="failureStatus">What a faulted classifier reports; <see cref="HealthStatus.Unhealthy"/> when null.</param>
    /// <param name="tags">Tags to filter the check by (e.g. "ready" for a readiness route).</param>
    public static IHealthChecksBuilder AddToMeEngineCheck(this IHealthChecksBuilder builder, string name = DefaultName,
        HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(name, services => new Check(services.GetRequiredService<IImageClassifier>()),
            failureStatus, tags));
    }

    private sealed class Check(IImageClassifier classifier) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var data = new Dictionary<string, object> { ["classifier"] = classifier.Description };
            return Task.FromResult(classifier.Fault is { } fault
                ? new HealthCheckResult(context.Registration.FailureStatus, $"{classifier.Description} cannot classify: {fault.Message}", fault, data)
                : HealthCheckResult.Healthy(classifier.Description, data));
        }
    }
}
