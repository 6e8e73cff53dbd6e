using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ToMe.Weights;

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

    /// <summary>
    /// The model's name in the Open Inference Protocol's paths (<c>/v2/models/NAME</c>); null uses the architecture's name.
    /// <see cref="ClassifierServer.ModelName"/> derives one from a model path or hub name.
    /// </summary>
    public string? ModelName { get; set; }

    /// <summary>
    /// The largest r the browser page's slider and <c>POST /inspect</c> accept; null allows every r the model has tokens
    /// for (half its patches, above which ToMe merges no more).
    /// </summary>
    public int? MaxInspectR { get; set; }

    /// <summary>
    /// How long the service keeps serving once told to stop (SIGTERM, Ctrl+C) before it closes its listeners: the readiness
    /// endpoints answer 503 meanwhile, so a load balancer that polls them stops sending requests before connections are
    /// refused. Zero (the default) stops at once; requests in flight always finish.
    /// </summary>
    public TimeSpan DrainDelay { get; set; }
}

/// <summary>
/// Holds the host's stop between "stopping" (readiness turns 503) and the listeners closing. The host stops its
/// lifecycle services before it signals ApplicationStopping, so this is where a stop is first seen.
/// </summary>
internal sealed class ServiceDrain(ClassifierServerOptions options) : IHostedLifecycleService
{
    private volatile bool stopping;

    /// <summary>Whether the host has begun to stop.</summary>
    public bool Stopping => stopping;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        stopping = true;
        if (options.DrainDelay > TimeSpan.Zero)
            await Task.WhenAny(Task.Delay(options.DrainDelay, cancellationToken)).ConfigureAwait(false); // a timeout ends it early
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>A port another process already listens on: the service cannot start there.</summary>
public sealed class PortInUseException(string host, int port, Exception inner)
    : IOException($"port {port} on {host} is already in use by another process", inner)
{
    /// <summary>The port that was taken.</summary>
    public int Port { get; } = port;
}

/// <summary>Builds the classification web service: Kestrel on one address, the endpoints of <see cref="ClassifierEndpoints"/>.</summary>
public static class ClassifierServer
{
    /// <summary>Set while the host starts: its own "Hosting failed to start" log (a stack trace) would repeat what StartAsync throws.</summary>
    private sealed class StartupGate
    {
        public volatile bool Starting;
    }

    /// <summary>
    /// Builds the service and loads the model (before it listens, so the health endpoints answer only when it can classify).
    /// </summary>
    /// <param name="options">Address and classifier.</param>
    /// <param name="args">Command-line arguments for the host's configuration (e.g. <c>--Logging:LogLevel:Default=Warning</c>,
    /// or the <c>OTEL_*</c> settings of <see cref="ClassifierTelemetry"/>).</param>
    public static WebApplication Build(ClassifierServerOptions options, string[]? args = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.AddClassifier is null)
            throw new ArgumentException("ClassifierServerOptions.AddClassifier must register an IImageClassifier", nameof(options));
        if (options.Port is < 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(options), options.Port, "port must be between 0 and 65535");
        if (options.MaxInspectR is < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxInspectR, "MaxInspectR must be 0 or more");
        if (options.DrainDelay < TimeSpan.Zero || options.DrainDelay > TimeSpan.FromMinutes(10))
            throw new ArgumentOutOfRangeException(nameof(options), options.DrainDelay, "DrainDelay must be from 0 to 10 minutes");
        var address = ParseHost(options.Host);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args ?? [] });
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (address is null)
                k.ListenLocalhost(options.Port);
            else
                k.Listen(address, options.Port);
        });
        var gate = new StartupGate();
        builder.Services.AddSingleton(gate);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter((category, level) => !(gate.Starting && category == "Microsoft.Extensions.Hosting.Internal.Host"));
        builder.Services.AddProblemDetails();
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<ServiceDrain>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ServiceDrain>());
        // The drain counts against the host's stop timeout (30 s by default); requests in flight need their time after it.
        if (options.DrainDelay > TimeSpan.Zero)
            builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.DrainDelay + TimeSpan.FromSeconds(30));
        builder.AddClassifierTelemetry();
        options.AddClassifier(builder.Services);
        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapClassifierEndpoints();
        app.Services.GetRequiredService<IImageClassifier>();
        return app;
    }

    /// <summary>Starts listening; returns the address bound (with the real port when 0 was asked for).</summary>
    /// <exception cref="PortInUseException">Another process listens on the port.</exception>
    public static async Task<Uri> StartAsync(WebApplication app, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        var gate = app.Services.GetRequiredService<StartupGate>();
        var options = app.Services.GetRequiredService<ClassifierServerOptions>();
        gate.Starting = true;
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (e.InnerException is AddressInUseException)
        {
            throw new PortInUseException(options.Host, options.Port, e);
        }
        finally
        {
            gate.Starting = false;
        }
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault() ?? throw new InvalidOperationException("the server reports no address");
        return new Uri(first.Replace("[::]", "localhost", StringComparison.Ordinal));
    }

    /// <summary>
    /// Builds, starts and serves until the host stops (Ctrl+C, SIGTERM), printing <c>listening on ADDRESS (...)</c> once it
    /// listens. What a user can get wrong — no model, a model that does not load, a busy port, a bad address — ends in one
    /// line on <paramref name="error"/> (stderr by default) and exit code 2, never a stack trace.
    /// </summary>
    /// <param name="options">Address and classifier.</param>
    /// <param name="args">Configuration for the host, as <see cref="Build"/> takes it.</param>
    /// <param name="modelHint">Appended to model errors: how to name a model where this server is configured.</param>
    /// <param name="error">Where the one-line errors go; stderr when null.</param>
    public static async Task<int> RunAsync(ClassifierServerOptions options, string[]? args = null, string? modelHint = null, TextWriter? error = null)
    {
        error ??= Console.Error;
        WebApplication app;
        try
        {
            app = Build(options, args);
        }
        catch (Exception e) when (e is InvalidModelException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            error.WriteLine($"error: {e.Message}{(modelHint is null ? "" : $"; {modelHint}")}");
            return 2;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException)
        {
            error.WriteLine($"error: {e.Message}");
            return 2;
        }
        await using (app)
        {
            Uri address;
            try
            {
                address = await StartAsync(app).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error.WriteLine($"error: {e.Message}");
                return 2;
            }
            Console.WriteLine($"listening on {address} ({app.Services.GetRequiredService<IImageClassifier>().Description}); Ctrl+C stops");
            await app.WaitForShutdownAsync().ConfigureAwait(false);
        }
        return 0;
    }

    /// <summary>
    /// A model's name for <c>/v2/models/NAME</c> from how it was given: <c>timm/NAME</c> → NAME; a folder → its name; a
    /// <c>.safetensors</c> file → its name without the extension.
    /// </summary>
    public static string ModelName(string model)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        var trimmed = model.TrimEnd('/', '\\');
        var name = Path.GetFileName(trimmed);
        return name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? name[..^".safetensors".Length] : name;
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
