using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;

namespace ToMe.Serving.Http;

/// <summary>
/// Prometheus scraping on the stable OpenTelemetry SDK: <see cref="AddPrometheusTextExporter"/> adds a pull reader to a
/// meter provider and <see cref="MapPrometheusMetrics"/> answers <c>GET /metrics</c> with what it collects, as Prometheus
/// text (format 0.0.4, <c>text/plain; version=0.0.4; charset=utf-8</c>). <see cref="ClassifierTelemetry.AddClassifierTelemetry"/>
/// and <see cref="ClassifierEndpoints.MapClassifierEndpoints"/> call them; a host that sets up OpenTelemetry itself calls
/// them instead.
/// </summary>
public static class PrometheusMetricsEndpoint
{
    /// <summary>The path <c>tome serve</c> and the sample service answer scrapes at.</summary>
    public const string DefaultPath = "/metrics";

    /// <summary>
    /// Adds the reader that a scrape of <see cref="MapPrometheusMetrics"/> collects (cumulative; the provider's views and
    /// histogram bucket advice apply). Call it once, on the host's meter provider (in <c>WithMetrics</c>).
    /// </summary>
    public static MeterProviderBuilder AddPrometheusTextExporter(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // Registered as a service so that the endpoint finds the reader of the provider the host builds; the provider
        // owns (and disposes) the reader, the container only the scraper around it.
        builder.ConfigureServices(services => services.TryAddSingleton<PrometheusScraper>());
        return builder.AddReader(sp => sp.GetRequiredService<PrometheusScraper>().Reader);
    }

    /// <summary>
    /// Maps <c>GET <paramref name="pattern"/></c> to Prometheus text of the metrics that
    /// <see cref="AddPrometheusTextExporter"/>'s reader collects; 503 when they cannot be collected (the provider is shut down).
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="AddPrometheusTextExporter"/> was not called on the host's meter provider.</exception>
    public static IEndpointConventionBuilder MapPrometheusMetrics(this IEndpointRouteBuilder endpoints, string pattern = DefaultPath)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var scraper = endpoints.ServiceProvider.GetService<PrometheusScraper>() ?? throw new InvalidOperationException(
            $"GET {pattern} serves the metrics of the Prometheus reader, which is not registered: call AddClassifierTelemetry() on the " +
            "WebApplicationBuilder, or AddPrometheusTextExporter() in services.AddOpenTelemetry().WithMetrics(...)");
        return endpoints.MapGet(pattern, async context =>
        {
            var text = await scraper.ScrapeAsync(context.RequestAborted);
            if (text is null)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                await context.Response.WriteAsync("metrics could not be collected (is the meter provider shut down?)\n", context.RequestAborted);
                return;
            }
            context.Response.ContentType = PrometheusTextFormat.ContentType;
            context.Response.ContentLength = text.Length;
            await context.Response.Body.WriteAsync(text, context.RequestAborted);
        });
    }
}
