using System.Globalization;
using ToMe.Serving;
using ToMe.Serving.Http;

// A minimal image classification service over ToMeEngine. Settings come from appsettings.json, TOME_* environment
// variables (TOME_ToMe__Model=...) or the command line (--ToMe:Model=...); see README.md.
var config = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables("TOME_")
    .AddCommandLine(args)
    .Build()
    .GetSection("ToMe");

int Int(string key, int fallback) => config[key] is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

var app = ClassifierServer.Build(new ClassifierServerOptions
{
    Host = config["Host"] ?? "127.0.0.1",
    Port = Int("Port", 8080),
    AddClassifier = services => services.AddToMeEngine(o =>
    {
        o.Model = config["Model"];
        o.Engine = o.Engine with
        {
            Backend = Enum.Parse<ToMe.BackendKind>(config["Backend"] ?? "Auto", ignoreCase: true),
            Schedule = ToMe.Merging.MergeSchedule.Parse(config["R"] ?? "0"),
        };
        o.Batching.MaxBatchSize = Int("MaxBatchSize", 32);
        o.Batching.MaxQueueDelay = TimeSpan.FromMilliseconds(Int("MaxQueueDelayMs", 2));
        o.Batching.MaxQueueLength = Int("MaxQueueLength", 256);
    }),
}, args);

var address = await ClassifierServer.StartAsync(app);
Console.WriteLine($"listening on {address}");
await app.WaitForShutdownAsync();
