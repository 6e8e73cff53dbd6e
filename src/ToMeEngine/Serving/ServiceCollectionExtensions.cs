using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ToMe.Serving;

/// <summary>What <see cref="ServiceCollectionExtensions.AddToMeEngine(IServiceCollection, Action{ToMeServingOptions})"/> builds.</summary>
public sealed class ToMeServingOptions
{
    /// <summary>Model folder, .safetensors file or hub name, as <see cref="ToMeEngine.Load"/> takes. Required.</summary>
    public string? Model { get; set; }

    /// <summary>How each engine runs the model.</summary>
    public EngineOptions Engine { get; set; } = new();

    /// <summary>Dynamic batching limits of each engine.</summary>
    public BatchingOptions Batching { get; set; } = new();

    /// <summary>
    /// Engines to load. Null (the default) loads a single engine from <see cref="Engine"/>; set it to spread requests over
    /// one engine per GPU and/or CPU engines (<see cref="EnginePool"/>).
    /// </summary>
    public EnginePoolOptions? Pool { get; set; }
}

/// <summary>Registers the batching classifier with <c>Microsoft.Extensions.DependencyInjection</c>.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IImageClassifier"/> as a singleton (a <see cref="BatchingClassifier"/>, or an <see cref="EnginePool"/>
    /// when <see cref="ToMeServingOptions.Pool"/> is set), loaded when first resolved and disposed with the container, and
    /// <see cref="ServingMetrics"/> (Meter "ToMeEngine", created through <see cref="IMeterFactory"/> when one is registered).
    /// </summary>
    public static IServiceCollection AddToMeEngine(this IServiceCollection services, Action<ToMeServingOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.Configure(configure);
        AddMetrics(services);
        services.TryAddSingleton<IImageClassifier>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ToMeServingOptions>>().Value;
            if (string.IsNullOrWhiteSpace(options.Model))
                throw new InvalidOperationException("ToMeServingOptions.Model is not set: name a model folder, .safetensors file or hub name");
            var loggers = sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
            var log = loggers.CreateLogger(typeof(ServiceCollectionExtensions).FullName!);
            var metrics = sp.GetRequiredService<ServingMetrics>();
            var watch = Stopwatch.StartNew();
            IImageClassifier classifier = options.Pool is null
                ? new BatchingClassifier(ToMeEngine.Load(options.Model, options.Engine), options.Batching, ownsEngine: true, metrics,
                                         loggers.CreateLogger<BatchingClassifier>(), () => ToMeEngine.Load(options.Model, options.Engine))
                : EnginePool.Load(options.Model, options.Engine, options.Batching, options.Pool, metrics, loggers);
            log.LogInformation("loaded {Model} in {Ms:F0} ms: {Description}", options.Model, watch.Elapsed.TotalMilliseconds, classifier.Description);
            return classifier;
        });
        return services;
    }

    /// <summary>
    /// Registers an engine already loaded (e.g. by a command line) behind a <see cref="BatchingClassifier"/>; the container
    /// disposes the engine with the classifier once the classifier has been resolved (a container disposes only what it
    /// built: if <see cref="IImageClassifier"/> is never resolved, the engine stays the caller's to dispose). <paramref name="replaceLostEngine"/> loads a fresh engine for one whose GPU
    /// context was lost (see <see cref="BatchingClassifier"/>).
    /// </summary>
    public static IServiceCollection AddToMeEngine(this IServiceCollection services, ToMeEngine engine, BatchingOptions? batching = null,
                                                   Func<ToMeEngine>? replaceLostEngine = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(engine);
        AddMetrics(services);
        services.TryAddSingleton<IImageClassifier>(sp => new BatchingClassifier(engine, batching, ownsEngine: true, sp.GetRequiredService<ServingMetrics>(),
            (sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance).CreateLogger<BatchingClassifier>(), replaceLostEngine));
        return services;
    }

    private static void AddMetrics(IServiceCollection services)
    {
        services.TryAddSingleton(sp => new ServingMetrics(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton(sp => new ServingMetricsCollector(sp.GetRequiredService<ServingMetrics>()));
    }
}
