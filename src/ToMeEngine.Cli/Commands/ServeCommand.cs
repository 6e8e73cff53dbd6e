using System.CommandLine;
using System.Net;
using ToMe.Serving;
using ToMe.Serving.Http;

namespace ToMe.Cli.Commands;

/// <summary><c>tome serve --model PATH --port N</c>: the classification web service of samples/ClassifierService (<see cref="ClassifierServer"/>).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one, printed on start)", DefaultValueFactory = _ => 8080 }
            .Check((int n) =>
            {
                if (n is < IPEndPoint.MinPort or > IPEndPoint.MaxPort)
                    throw new ArgumentException($"must be {IPEndPoint.MinPort} (a free port) to {IPEndPoint.MaxPort}");
            });
        var host = new Option<string>("--host") { Description = "address to listen on: an IP or localhost (loopback by default)", DefaultValueFactory = _ => "127.0.0.1" };
        // Checked while parsing against BatchingOptions' own rules, so a bad number costs no load time and names its option.
        var maxBatch = new Option<int>("--max-batch") { Description = "most images per forward pass", DefaultValueFactory = _ => 32 }
            .Check((int n) => new BatchingOptions { MaxBatchSize = n }.Validate());
        var maxDelay = new Option<double>("--max-delay-ms") { Description = "how long the oldest request waits for a batch to fill (0 to 10000)", DefaultValueFactory = _ => 2 }
            .Check((double ms) => new BatchingOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(ms) }.Validate());
        var maxQueue = new Option<int>("--max-queue") { Description = "most requests waiting; more are answered 503", DefaultValueFactory = _ => 256 }
            .Check((int n) => new BatchingOptions { MaxQueueLength = n }.Validate());
        var drain = new Option<double>("--drain-seconds")
        {
            Description = "once told to stop, keep serving this long (0 to 600) with readiness answering 503, so a load balancer drains the server",
            DefaultValueFactory = _ => 0,
        }.Check((double seconds) =>
        {
            if (!(seconds is >= 0 and <= 600))
                throw new ArgumentException("must be from 0 to 600");
        });
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
            var engine = engineOptions.Load(parse, batching.MaxBatchSize, warmUp: true, batchOption: "--max-batch");
            var options = new ClassifierServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                DrainDelay = TimeSpan.FromSeconds(parse.GetValue(drain)),
                ModelName = parse.GetValue(engineOptions.Model) is { } model ? ClassifierServer.ModelName(model) : null,
                AddClassifier = services => services.AddToMeEngine(engine, batching,
                    () => engineOptions.Load(parse, batching.MaxBatchSize, warmUp: true, batchOption: "--max-batch")),
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
