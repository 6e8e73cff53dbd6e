using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ToMe.Serving.Http;

/// <summary>Where a <see cref="ClassifierServer"/> listens and which classifier it serves.</summary>
public sealed class ClassifierServerOptions
{
    /// <summary>An IP address or <c>localhost</c>. Loopback by default: exposing the service is a deliberate choice.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The TCP port; 0 picks a free one (read it from <see cref="ClassifierServer.StartAsync"/>).</summary>
    public int Port { get; set; } = 8080;

    /// <summary>Registers <see cref="IImageClassifier"/>, e.g. <c>services =&gt; services.AddToMeEngine(o =&gt; o.Model = "...")</c>.</summary>
    public Action<IServiceCollection>? AddClassifier { get; set; }
}

/// <summary>Builds the classification web service: Kestrel on one address, the endpoints of <see cref="ClassifierEndpoints"/>.</summary>
public static class ClassifierServer
{
    /// <summary>
    /// Builds the service and loads the model (before it listens, so <c>/health</c> answers only when it can classify).
    /// </summary>
    /// <param name="options">Address and classifier.</param>
    /// <param name="args">Command-line arguments for the host's configuration (e.g. <c>--Logging:LogLevel:Default=Warning</c>).</param>
    public static WebApplication Build(ClassifierServerOptions options, string[]? args = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.AddClassifier is null)
            throw new ArgumentException("ClassifierServerOptions.AddClassifier must register an IImageClassifier", nameof(options));
        if (options.Port is < 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(options), options.Port, "port must be between 0 and 65535");
        var address = ParseHost(options.Host);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args ?? [] });
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (address is null)
                k.ListenLocalhost(options.Port);
            else
                k.Listen(address, options.Port);
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        options.AddClassifier(builder.Services);
        var app = builder.Build();
        app.MapClassifierEndpoints();
        app.Services.GetRequiredService<IImageClassifier>();
        // Created now so that /metrics counts from the start, not from its first call.
        app.Services.GetService<ServingMetricsCollector>();
        return app;
    }

    /// <summary>Starts listening; returns the address bound (with the real port when 0 was asked for).</summary>
    public static async Task<Uri> StartAsync(WebApplication app, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault() ?? throw new InvalidOperationException("the server reports no address");
        return new Uri(first.Replace("[::]", "localhost", StringComparison.Ordinal));
    }

    private static IPAddress? ParseHost(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            return null;
        if (IPAddress.TryParse(host, out var address))
            return address;
        throw new ArgumentException($"host '{host}' is not an IP address or localhost");
    }
}
