using System.Text.Json;
using ToMe.Tests.Bridges;
using ToMe.Tests.Support;

namespace ToMe.Tests.FirstRun;

/// <summary>
/// `tome` as a .NET tool: the README's pack + install, done offline into a temporary tool path from the package this
/// checkout packs, then the installed command classifies.
/// </summary>
public sealed class ToolPackageTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-tool-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void TheReadmeShowsOneCommandThatInstallsTheTool()
    {
        var readme = File.ReadAllText(Path.Combine(RepoData.CheckoutRoot, "README.md"));
        Assert.Contains("dotnet pack src/ToMeEngine.Cli -c Release -o artifacts && dotnet tool install --global --add-source ./artifacts ToMeEngine.Tool", readme);
    }

    [Fact]
    public void ThePackedToolInstallsAndClassifies()
    {
        // Pack what the build of these tests made (same configuration), without rebuilding.
        var feed = Path.Combine(dir, "feed");
        var environment = new Dictionary<string, string?>
        {
            ["NUGET_PACKAGES"] = Path.Combine(dir, "packages"), // a fresh cache: no older package of the same version is reused
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        };
        var (packed, packOut, packErr) = TomeProcess.RunProgram("dotnet",
            ["pack", Path.Combine(RepoData.CheckoutRoot, "src", "ToMeEngine.Cli", "ToMeEngine.Cli.csproj"), "-c", RepoData.Configuration, "--no-build", "-o", feed],
            environment: environment, limit: TimeSpan.FromMinutes(5));
        Assert.True(packed == 0, packOut + packErr);
        var package = Assert.Single(Directory.GetFiles(feed, "ToMeEngine.Tool.*.nupkg"));

        // Offline: the only package source is the folder the package was packed into.
        var config = Path.Combine(dir, "nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear /><add key="local" value="{feed}" /></packageSources></configuration>
            """);
        var tools = Path.Combine(dir, "tools");
        var (installed, installOut, installErr) = TomeProcess.RunProgram("dotnet",
            ["tool", "install", "ToMeEngine.Tool", "--tool-path", tools, "--configfile", config], environment: environment, limit: TimeSpan.FromMinutes(5));
        Assert.True(installed == 0, installOut + installErr);
        Assert.Contains("tome", installOut);

        var tome = Path.Combine(tools, OperatingSystem.IsWindows() ? "tome.exe" : "tome");
        var model = Fixtures.ModelPath("vit_p14_d3");
        var png = RepoData.Path("images/png_rgb.png");
        var gif = BridgeImages.Write(dir, "picture.gif", BridgeImages.Gif()); // the packed natives of SkiaSharp decode it
        var (code, stdout, stderr) = TomeProcess.RunProgram(tome, ["classify", png, gif, "--model", model, "--backend", "cpu", "--top", "2", "--json"],
            workingDirectory: dir);
        Assert.True(code == 0, $"{package}: {stderr}");
        using var engine = ToMeEngine.Load(model, new EngineOptions { Backend = BackendKind.Cpu });
        using var json = JsonDocument.Parse(stdout);
        var results = json.RootElement.GetProperty("results");
        Assert.Equal(engine.Classify(png, 2)[0].ClassIndex, results[0].GetProperty("predictions")[0].GetProperty("index").GetInt32());
        Assert.Equal(engine.Classify(BridgeImages.Source, 2)[0].ClassIndex, results[1].GetProperty("predictions")[0].GetProperty("index").GetInt32());
        Assert.Contains("note: GIF decoded by SkiaSharp", stderr);
    }
}
