using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ToMe.Serving.Http;

/// <summary>
/// OpenTelemetry for the classification service. Metrics: the <c>ToMeEngine</c> meter (<see cref="ServingMetrics"/>) with
/// ASP.NET Core's and Kestrel's, scraped as Prometheus text at <c>GET /metrics</c> (<see cref="PrometheusMetricsEndpoint"/>). Traces: an activity per HTTP request
/// (ASP.NET Core), per classification and per batch (<see cref="ServingTracing"/>). Both are also pushed over OTLP when the
/// standard settings name a collector (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, or the per-signal
/// <c>OTEL_EXPORTER_OTLP_METRICS_ENDPOINT</c> / <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>, with <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>,
/// <c>OTEL_EXPORTER_OTLP_HEADERS</c>, <c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>, ...), read from the
/// environment or any other configuration source of the host.
/// </summary>
public static class ClassifierTelemetry
{
    /// <summary>The service name reported when <c>OTEL_SERVICE_NAME</c> does not set one.</summary>
    public const string DefaultServiceName = "tome-serve";

    /// <summary>Registers the meters, sources and exporters described above.</summary>
    public static WebApplicationBuilder AddClassifierTelemetry(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var config = builder.Configuration;
        bool Configured(string signal) =>
            !string.IsNullOrWhiteSpace(config["OTEL_EXPORTER_OTLP_ENDPOINT"]) || !string.IsNullOrWhiteSpace(config[$"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"]);
        bool otlpMetrics = Configured("METRICS"), otlpTraces = Configured("TRACES");
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r =>
            {
                // An explicit service name would override OTEL_SERVICE_NAME, which operators expect to win.
                if (string.IsNullOrWhiteSpace(config["OTEL_SERVICE_NAME"]))
                    r.AddService(DefaultServiceName, serviceVersion: typeof(ClassifierTelemetry).Assembly.GetName().Version?.ToString());
            })
            .WithMetrics(m =>
            {
                m.AddMeter(ServingMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
                 .AddPrometheusTextExporter();
                if (otlpMetrics)
                    m.AddOtlpExporter();
            })
            .WithTracing(t =>
            {
                t.AddSource(ServingTracing.SourceName)
                 // Probes and scrapes are not worth a trace each.
                 .AddAspNetCoreInstrumentation(o => o.Filter = c => !c.Request.Path.StartsWithSegments(PrometheusMetricsEndpoint.DefaultPath) && !c.Request.Path.StartsWithSegments("/v2/health"));
                if (otlpTraces)
                    t.AddOtlpExporter();
            });
        return builder;
    }
}
