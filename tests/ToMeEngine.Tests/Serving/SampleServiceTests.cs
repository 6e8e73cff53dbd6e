using System.Net;
using System.Net.Http.Json;
using ToMe.Serving.Http;
using ToMe.Tests.Support;

namespace ToMe.Tests.Serving;

/// <summary>
/// samples/ClassifierService started as its README says, <c>dotnet run --project samples/ClassifierService -- --ToMe:Model=...</c>
/// from the checkout's root (with --no-build: the test project builds it), with a path relative to where it was started.
/// </summary>
public sealed class SampleServiceTests
{
    private static string Project => Path.Combine(RepoData.Root!, "samples", "ClassifierService");

    private static async Task<ServerProcess> Run(CancellationToken ct, params string[] settings)
    {
        if (RepoData.Root is null)
            Assert.Skip("needs the checkout around the test binaries (samples/ClassifierService)");
        return await ServerProcess.StartAsync(
            ServerProcess.Dotnet(RepoData.Root, ["run", "--no-build", "-c", RepoData.Configuration, "--project", Project, "--", .. settings]),
            TimeSpan.FromSeconds(90), ct);
    }

    [Fact(Timeout = 120_000)]
    public async Task StartsWithItsDocumentedCommandAndAModelPathRelativeToTheCaller()
    {
        var ct = TestContext.Current.CancellationToken;
        var model = Path.GetRelativePath(RepoData.Root ?? ".", ServingTestData.ModelPath);
        Assert.False(Path.IsPathRooted(model));
        await using var server = await Run(ct, $"--ToMe:Model={model}", "--ToMe:Port=0", "--ToMe:Backend=Cpu");
        Assert.True(server.Address is not null, $"the sample exited ({server.ExitCode}) before listening: {server.Stderr}");
        using var client = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/health/ready", ct)).StatusCode);
        var response = await client.PostAsync("/classify?top=3", new ByteArrayContent(ServingTestData.Encoded()[0]), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(3, (await response.Content.ReadFromJsonAsync<ClassifyResponse>(ct))!.Predictions.Count);
    }

    [Theory(Timeout = 120_000)]
    [InlineData(null)]
    [InlineData("models/no_such_model")]
    public async Task AMissingModelIsOneLineSayingHowToGetOne(string? model)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await Run(ct, model is null ? ["--ToMe:Port=0"] : [$"--ToMe:Model={model}", "--ToMe:Port=0"]);
        Assert.Null(server.Address);
        Assert.Equal(2, server.ExitCode);
        var lines = server.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got:\n{server.Stderr}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains("--ToMe:Model=PATH", lines[0]);
        Assert.Contains("timm/NAME", lines[0]);
        if (model is not null)
            Assert.Contains(model, lines[0]);
    }
}
