using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

/// <summary>
/// A command line that does not parse, or an option value out of range, is one line on stderr naming the option, and exit
/// code 2, before any model loads: never the whole help, .NET's exception text, or a file argument taken for an option.
/// </summary>
public sealed class UsageErrorTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-cli-usage-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Model => Fixtures.ModelPath("vit_p14_d3");

    private static string Picture => RepoData.Path(Path.Combine("images", "png_rgb.png"));

    private string[] Command(string name) => name switch
    {
        "classify" => ["classify", Picture, "--model", Model, "--backend", "cpu"],
        "visualize" => ["visualize", Picture, "--model", Model, "--backend", "cpu", "-o", Path.Combine(dir, "v.png")],
        "eval" => ["eval", "--model", Model, "--images", Labelled(), "--backend", "cpu"],
        "forward" => ["forward", "--model", Model, "--input", Fixtures.GoldenPath("vit_p14_d3"), "-o", Path.Combine(dir, "f.safetensors")],
        "bench" => ["bench", "--model", Model, "--backend", "cpu", "--runs", "1", "--warmup", "0", "--batch", "1", "--r", "0"],
        "serve" => ["serve", "--model", Model, "--backend", "cpu", "--port", "0"],
        _ => [name],
    };

    private string Labelled()
    {
        File.Copy(Picture, Path.Combine(dir, "a.png"), overwrite: true);
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), ["filename,class_index", "a.png,3"]);
        return dir;
    }

    private static string AssertOneLineUsageError((int Code, string Stdout, string Stderr) run)
    {
        Assert.True(run.Code == 2, $"exit {run.Code}: {run.Stderr}");
        Assert.Equal("", run.Stdout);
        var line = Assert.Single(run.Stderr.TrimEnd().Split('\n'));
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain("(Parameter", line);
        Assert.DoesNotContain("Usage:", run.Stderr);
        return line;
    }

    [Theory]
    [InlineData("classify", "--topp", "did you mean --top?")]
    [InlineData("classify", "--thread", "did you mean --threads?")]
    [InlineData("visualize", "--outptu", "did you mean --output?")]
    [InlineData("eval", "--limt", "did you mean --limit?")]
    [InlineData("forward", "--mergs", "did you mean --merges?")]
    [InlineData("classify", "--xyzzy", "tome classify --help lists the options")]
    [InlineData("classify", "-x.jpg", "a file whose name starts with '-' goes after '--' (tome classify ... -- -x.jpg), or as ./-x.jpg")]
    [InlineData("info", "-x.jpg", "tome info --help lists the options")] // info takes no files
    public void AnUnknownOptionIsRefusedBeforeAnyWork(string command, string unknown, string hint)
    {
        // "3" after the unknown option would be taken for an image where the command takes files.
        var line = AssertOneLineUsageError(TomeProcess.Run([.. Command(command), unknown, "3"]));
        Assert.Equal($"error: tome {command}: unknown option '{unknown}'; {hint}", line);
    }

    [Fact]
    public void AFileNamedLikeAnOptionGoesAfterDoubleDash()
    {
        var (code, _, stderr) = TomeProcess.Run("classify", "--model", Model, "--backend", "cpu", "--", "-x.png");
        Assert.Equal(1, code); // read as an image, and missing
        Assert.Contains("-x.png", stderr);
        Assert.DoesNotContain("unknown option", stderr);
    }

    [Theory]
    [InlineData(new[] { "--top", "abc" }, "error: --top 'abc' is not a valid integer")]
    [InlineData(new[] { "--top", "1", "--top", "2" }, "--top")]
    [InlineData(new[] { "--top" }, "--top")]
    [InlineData(new[] { "--top", "0" }, "error: --top must be at least 1")]
    public void MalformedValuesAreOneLineWithExitCode2(string[] extra, string fragment)
    {
        var line = AssertOneLineUsageError(TomeProcess.Run([.. Command("classify"), .. extra]));
        Assert.Contains(fragment, line);
    }

    [Theory]
    [InlineData(new string[0], "error: no command given; tome --help lists the commands")]
    [InlineData(new[] { "clasify" }, "error: unknown command 'clasify'; tome --help lists the commands")]
    public void AMissingOrUnknownCommandIsOneLine(string[] args, string message) =>
        Assert.Equal(message, AssertOneLineUsageError(TomeProcess.Run(args)));

    [Theory]
    [InlineData("classify", "--threads", "100000", "--threads 100000: must be 0 (all cores) or 1 to 1024")]
    [InlineData("classify", "--threads", "2147483647", "--threads 2147483647: must be 0 (all cores) or 1 to 1024")]
    [InlineData("classify", "--threads", "-1", "--threads -1: must be 0 (all cores) or 1 to 1024")]
    [InlineData("serve", "--threads", "100000", "--threads 100000: must be 0 (all cores) or 1 to 1024")]
    [InlineData("forward", "--threads", "5000", "--threads 5000: must be 0 (all cores) or 1 to 1024")]
    [InlineData("bench", "--threads", "5000", "--threads 5000: must be 0 (all cores) or 1 to 1024")]
    [InlineData("classify", "--r", "-1", "--r: merge schedule '-1': r must be >= 0")]
    [InlineData("eval", "--r", "-2", "--r: merge schedule '-2': r must be >= 0")]
    [InlineData("bench", "--r", "0,-1", "--r 0,-1: r must be >= 0")]
    [InlineData("serve", "--port", "70000", "--port 70000: must be 0 (a free port) to 65535")]
    [InlineData("serve", "--max-batch", "0", "--max-batch 0: must be at least 1")]
    [InlineData("serve", "--max-delay-ms", "-1", "--max-delay-ms -1: must be between 0 and 10 s")]
    [InlineData("serve", "--drain-seconds", "700", "--drain-seconds 700: must be from 0 to 600")]
    [InlineData("serve", "--max-queue", "0", "--max-queue 0: must be at least 1")]
    [InlineData("serve", "--max-pixels", "0", "--max-pixels 0: must be at least 1")]
    [InlineData("bench", "--decode-threads", "100000", "--decode-threads 100000: must be 0 (one per core) or 1 to 1024")]
    [InlineData("eval", "--labels", "nonexist.csv", "--labels nonexist.csv: no such file")]
    [InlineData("forward", "--input", "nonexist.safetensors", "--input nonexist.safetensors: no such file")]
    public void AValueOutOfRangeNamesItsOption(string command, string option, string value, string message)
    {
        var args = Command(command).ToList();
        int given = args.IndexOf(option);
        if (given >= 0)
            args[given + 1] = value;
        else
            args.AddRange([option, value]);
        var line = AssertOneLineUsageError(TomeProcess.Run([.. args]));
        Assert.StartsWith($"error: {message}", line);
    }

    [Fact]
    public void AFolderGivenForLabelsIsNamedAsOne()
    {
        var line = AssertOneLineUsageError(TomeProcess.Run([.. Command("eval"), "--labels", dir]));
        Assert.Equal($"error: --labels {dir}: is a directory; give a file", line);
    }

    [Fact]
    public void ABatchTooLargeForTheModelNamesTheOption()
    {
        var line = AssertOneLineUsageError(TomeProcess.Run([.. Command("eval"), "--batch", "100000"]));
        Assert.StartsWith("error: --batch 100000: ", line);
        Assert.Contains("the largest batch that fits is", line);
    }

    [Fact]
    public void TheEngineRefusesMoreThreadsThanItsBound()
    {
        var weights = Fixtures.Model("vit_p14_d3");
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ToMeEngine.Create(weights, new EngineOptions { Backend = BackendKind.Cpu, Threads = EngineOptions.MaxThreads + 1 }));
        Assert.Equal(nameof(EngineOptions.Threads), error.ParamName);
        Assert.InRange(EngineOptions.MaxThreads, Environment.ProcessorCount, 4096);
    }
}
