using System.CommandLine;
using ToMe.Serving;
using ToMe.Serving.Http;

namespace ToMe.Cli.Commands;

/// <summary><c>tome serve --model PATH --port N</c>: the classification web service of samples/ClassifierService (<see cref="ClassifierServer"/>).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one, printed on start)", DefaultValueFactory = _ => 8080 };
        var host = new Option<string>("--host") { Description = "address to listen on: an IP or localhost (loopback by default)", DefaultValueFactory = _ => "127.0.0.1" };
        var maxBatch = new Option<int>("--max-batch") { Description = "most images per forward pass", DefaultValueFactory = _ => 32 };
        var maxDelay = new Option<double>("--max-delay-ms") { Description = "how long the oldest request waits for a batch to fill", DefaultValueFactory = _ => 2 };
        var maxQueue = new Option<int>("--max-queue") { Description = "most requests waiting; more are answered 503", DefaultValueFactory = _ => 256 };
        var drain = new Option<double>("--drain-seconds")
        {
            Description = "once told to stop, keep serving this long with readiness answering 503, so a load balancer drains the server",
            DefaultValueFactory = _ => 0,
        };
        var engineOptions = new EngineCliOptions();
        var command = new Command("serve", "serve the browser page at /, POST /classify, the Open Inference Protocol under /v2, " +
                                           "GET /health and Prometheus metrics at GET /metrics over HTTP") { port, host, maxBatch, maxDelay, maxQueue, drain };
        engineOptions.AddTo(command);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var batching = new BatchingOptions
            {
                MaxBatchSize = parse.GetValue(maxBatch),
                MaxQueueDelay = TimeSpan.FromMilliseconds(parse.GetValue(maxDelay)),
                MaxQueueLength = parse.GetValue(maxQueue),
            };
            // Checked before the model loads, so a bad number costs no load time.
            batching.Validate();
            double drainSeconds = parse.GetValue(drain);
            if (!(drainSeconds is >= 0 and <= 600))
                throw new ArgumentException($"--drain-seconds must be from 0 to 600, got {drainSeconds}");
            var engine = engineOptions.Load(parse, batching.MaxBatchSize, warmUp: true);
            var options = new ClassifierServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                DrainDelay = TimeSpan.FromSeconds(drainSeconds),
                ModelName = parse.GetValue(engineOptions.Model) is { } model ? ClassifierServer.ModelName(model) : null,
                AddClassifier = services => services.AddToMeEngine(engine, batching,
                    () => engineOptions.Load(parse, batching.MaxBatchSize, warmUp: true)),
            };
            // One line on stderr and exit code 2 for a busy port or a bad address, as for every other user error.
            int status = ClassifierServer.RunAsync(options).GetAwaiter().GetResult();
            if (status != 0)
                engine.Dispose(); // never handed to a container that would dispose it
            return status;
        }));
        return command;
    }
}
