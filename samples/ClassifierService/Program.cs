using System.Globalization;
using ToMe.Serving;
using ToMe.Serving.Http;

// A minimal image classification service over ToMeEngine. Settings come from appsettings.json, TOME_* environment
// variables (TOME_ToMe__Model=...) or the command line (--ToMe:Model=...); see README.md. Relative paths are relative to
// the directory the service was started from (dotnet run included: see RunWorkingDirectory in the project file).
const string ModelHint = "name one with --ToMe:Model=PATH (a folder in timm's hub layout, config.json + model.safetensors, or one .safetensors file) " +
                         "or --ToMe:Model=timm/NAME (fetched from the Hugging Face hub)";
var config = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables("TOME_")
    .AddCommandLine(args)
    .Build()
    .GetSection("ToMe");

var model = config["Model"];
if (string.IsNullOrWhiteSpace(model))
{
    Console.Error.WriteLine($"error: no model given; {ModelHint}");
    return 2;
}

ClassifierServerOptions options;
try
{
    int Int(string key, int fallback) => config[key] is { } text
        ? int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new FormatException($"ToMe:{key} '{text}' is not an integer")
        : fallback;
    var engine = new ToMe.EngineOptions
    {
        Backend = Enum.TryParse<ToMe.BackendKind>(config["Backend"] ?? "Auto", ignoreCase: true, out var backend)
            ? backend : throw new FormatException($"ToMe:Backend '{config["Backend"]}' is not Cpu, Cuda or Auto"),
        Schedule = ToMe.Merging.MergeSchedule.Parse(config["R"] ?? "0"),
        MaxBatchSize = Int("MaxBatchSize", 32),
    };
    var batching = new BatchingOptions
    {
        MaxBatchSize = Int("MaxBatchSize", 32),
        MaxQueueDelay = TimeSpan.FromMilliseconds(Int("MaxQueueDelayMs", 2)),
        MaxQueueLength = Int("MaxQueueLength", 256),
    };
    options = new ClassifierServerOptions
    {
        Host = config["Host"] ?? "127.0.0.1",
        Port = Int("Port", 8080),
        ModelName = ClassifierServer.ModelName(model),
        AddClassifier = services => services.AddToMeEngine(o =>
        {
            o.Model = model;
            o.Engine = engine;
            o.Batching = batching;
        }),
    };
}
catch (Exception e) when (e is FormatException or ArgumentException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
return await ClassifierServer.RunAsync(options, args, ModelHint);
