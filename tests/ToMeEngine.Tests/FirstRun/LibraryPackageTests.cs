using System.Diagnostics;
using System.IO.Compression;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using ToMe.Tests.Support;

namespace ToMe.Tests.FirstRun;

/// <summary>
/// The library as an embedder gets it: the four packages this checkout packs (ToMeEngine, ToMeEngine.ImageSharp,
/// ToMeEngine.SkiaSharp, ToMeEngine.AspNetCore), what they declare, and the samples built against them, not against the
/// projects: the README's example runs, and the service sample serves a classification.
/// </summary>
[Collection(nameof(LibraryPackageCollection))]
public sealed class LibraryPackageTests(LibraryPackages packages)
{
    [Fact]
    public void EveryPackageDescribesItselfAndCarriesItsReadmeAndDocs()
    {
        foreach (var id in LibraryPackages.Ids)
        {
            var (nuspec, files) = packages.Read(id);
            var meta = nuspec.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string? Field(string name) => meta.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
            var description = Field("description");
            Assert.False(string.IsNullOrWhiteSpace(description) || description == "Package Description", $"{id}: no description of its own");
            Assert.Equal("README.md", Field("readme"));
            Assert.Contains("README.md", files);
            Assert.Contains($"lib/net10.0/{id}.xml", files); // the API docs an IDE shows
            Assert.Contains($"lib/net10.0/{id}.pdb", packages.ReadSymbols(id)); // a debugger's way into the engine
            // A stable package takes no prerelease dependency (feeds and lock-down policies refuse them).
            foreach (var dependency in meta.Descendants().Where(e => e.Name.LocalName == "dependency"))
                Assert.False(dependency.Attribute("version")!.Value.Contains('-'),
                    $"{id} depends on the prerelease {dependency.Attribute("id")?.Value} {dependency.Attribute("version")?.Value}");
        }
    }

    [Fact]
    public void ImageSharpStaysOnItsApacheLicensedLine()
    {
        // 3.0 and later are commercially licensed: the package must not let NuGet resolve one for an embedder.
        var (nuspec, _) = packages.Read("ToMeEngine.ImageSharp");
        var imageSharp = nuspec.Descendants().Single(e => e.Name.LocalName == "dependency" && e.Attribute("id")?.Value == "SixLabors.ImageSharp");
        Assert.Equal("[2.1.13]", imageSharp.Attribute("version")!.Value);
    }

    [Fact]
    public void PackingTheCheckoutWritesTheFivePackagesWithoutWarnings()
    {
        // The README's `dotnet pack -c Release -o artifacts` at the root: the four library packages and the tool, and nothing
        // that looks like a problem to someone following it (the samples and tests are passed over silently).
        var output = Path.Combine(packages.Dir, "whole-checkout");
        var (code, stdout, stderr) = TomeProcess.RunProgram("dotnet",
            ["pack", Path.Combine(RepoData.CheckoutRoot, "ToMeEngine.sln"), "-c", RepoData.Configuration, "--no-build", "-o", output],
            environment: new Dictionary<string, string?> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" }, limit: TimeSpan.FromMinutes(3));
        Assert.True(code == 0, stdout + stderr);
        Assert.DoesNotContain("warning", stdout + stderr, StringComparison.OrdinalIgnoreCase);
        var packed = Directory.GetFiles(output, "*.nupkg").Select(p => Regex.Replace(Path.GetFileName(p), @"\.\d+\.\d+\.\d+(-[^.]+)?\.nupkg$", ""));
        Assert.Equal(LibraryPackages.Ids.Append("ToMeEngine.Tool").Order(StringComparer.Ordinal), packed.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TheReadmeExampleBuiltAgainstThePackagesRuns()
    {
        var project = packages.Consumer("QuickStart", "Microsoft.NET.Sdk", "<OutputType>Exe</OutputType>",
            ["ToMeEngine", "ToMeEngine.ImageSharp", "ToMeEngine.SkiaSharp"], Path.Combine("samples", "QuickStart", "Program.cs"));
        var work = Directory.CreateDirectory(Path.Combine(packages.Dir, "quickstart-run")).FullName;
        QuickStartSample.WriteInputs(work);
        var (code, stdout, stderr) = TomeProcess.RunProgram("dotnet", [Path.Combine(project, "out", "QuickStart.dll")], workingDirectory: work);
        Assert.True(code == 0, stderr);
        QuickStartSample.AssertOutput(stdout);
    }

    [Fact]
    public async Task TheServiceSampleBuiltAgainstThePackagesServes()
    {
        var ct = TestContext.Current.CancellationToken;
        var project = packages.Consumer("ClassifierService", "Microsoft.NET.Sdk.Web", "",
            ["ToMeEngine.AspNetCore"], Path.Combine("samples", "ClassifierService", "Program.cs"));
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(project, "out", "ClassifierService.dll"), $"--ToMe:Model={Fixtures.ModelPath("vit_p14_d3")}",
                                  "--ToMe:Port=0", "--ToMe:Backend=Cpu", "--ToMe:MaxBatchSize=2" })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            // The service prints its address once it listens.
            string? address = null;
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(TimeSpan.FromMinutes(1));
            while (address is null && await process.StandardOutput.ReadLineAsync(wait.Token) is { } line)
                address = Regex.Match(line, @"^listening on (\S+)") is { Success: true } m ? m.Groups[1].Value : null;
            Assert.True(address is not null, "the service did not start: " + (process.HasExited ? await stderr : "(still running)"));

            using var client = new HttpClient { BaseAddress = new Uri(address) };
            using var content = new ByteArrayContent(File.ReadAllBytes(RepoData.Path("images/png_rgb.png")));
            content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            using var response = await client.PostAsync("/classify", content, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.IsSuccessStatusCode, body);
            using var engine = ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions { Backend = BackendKind.Cpu });
            Assert.Contains($"\"index\":{engine.Classify(RepoData.Path("images/png_rgb.png"), 1)[0].ClassIndex}", body.Replace(" ", ""));
            Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync("/metrics", ct)).StatusCode);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }
    }
}

[CollectionDefinition(nameof(LibraryPackageCollection))]
public sealed class LibraryPackageCollection : ICollectionFixture<LibraryPackages>;

/// <summary>
/// The library packages packed once from this build (same configuration, no rebuild) into a temporary feed, and consumer
/// projects restored from it alone plus the machine's package cache used as a read-only local feed (offline; a fresh
/// cache so that no older package of the same version is reused).
/// </summary>
public sealed class LibraryPackages : IDisposable
{
    public static readonly string[] Ids = ["ToMeEngine", "ToMeEngine.ImageSharp", "ToMeEngine.SkiaSharp", "ToMeEngine.AspNetCore"];

    public string Dir { get; } = Directory.CreateTempSubdirectory("tome-packages-").FullName;

    private string Feed => Path.Combine(Dir, "feed");

    private readonly Dictionary<string, string?> environment;

    public LibraryPackages()
    {
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set
            ? set : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        environment = new()
        {
            ["NUGET_PACKAGES"] = Path.Combine(Dir, "packages"),
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        };
        foreach (var id in Ids)
        {
            var (code, stdout, stderr) = TomeProcess.RunProgram("dotnet",
                ["pack", Path.Combine(RepoData.CheckoutRoot, "src", id, id + ".csproj"), "-c", RepoData.Configuration, "--no-build", "-o", Feed],
                environment: environment, limit: TimeSpan.FromMinutes(3));
            if (code != 0)
                throw new InvalidOperationException($"dotnet pack {id} failed: {stdout}{stderr}");
        }
        File.WriteAllText(Path.Combine(Dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear />
              <add key="packed" value="{Feed}" />
              <add key="cache" value="{cache}" />
            </packageSources></configuration>
            """);
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);

    /// <summary>The package's nuspec and the names of the files it holds.</summary>
    public (XDocument Nuspec, HashSet<string> Files) Read(string id)
    {
        using var zip = ZipFile.OpenRead(PackageFile(id, "nupkg"));
        using var nuspec = zip.GetEntry(id + ".nuspec")!.Open();
        return (XDocument.Load(nuspec), zip.Entries.Select(e => e.FullName).ToHashSet());
    }

    // The package of that id (not of an id it begins, e.g. ToMeEngine.ImageSharp for ToMeEngine), .nupkg or .snupkg.
    private string PackageFile(string id, string extension) => Assert.Single(Directory.GetFiles(Feed, $"{id}.*.{extension}"),
        p => Regex.IsMatch(Path.GetFileName(p), $@"^{Regex.Escape(id)}\.\d+\.\d+\.\d+(-[^.]+)?\.{extension}$"));

    /// <summary>The names of the files in the package's symbol package (.snupkg).</summary>
    public HashSet<string> ReadSymbols(string id)
    {
        using var zip = ZipFile.OpenRead(PackageFile(id, "snupkg"));
        return zip.Entries.Select(e => e.FullName).ToHashSet();
    }

    /// <summary>
    /// A project NAME beside the feed with the checkout's <paramref name="source"/> file as its code and package references
    /// to <paramref name="references"/>, built into NAME/out; returns its folder.
    /// </summary>
    public string Consumer(string name, string sdk, string properties, string[] references, string source)
    {
        var project = Directory.CreateDirectory(Path.Combine(Dir, name)).FullName;
        var version = Read(references[0]).Nuspec.Descendants().First(e => e.Name.LocalName == "version").Value;
        File.WriteAllText(Path.Combine(project, name + ".csproj"), $"""
            <Project Sdk="{sdk}">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                {properties}
              </PropertyGroup>
              <ItemGroup>
            {string.Concat(references.Select(r => $"    <PackageReference Include=\"{r}\" Version=\"{version}\" />\n"))}  </ItemGroup>
            </Project>
            """);
        File.Copy(Path.Combine(RepoData.CheckoutRoot, source), Path.Combine(project, "Program.cs"));
        var (code, stdout, stderr) = TomeProcess.RunProgram("dotnet", ["build", project, "-c", "Release", "-o", Path.Combine(project, "out")],
            workingDirectory: Dir, environment: environment, limit: TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"{name} did not build against the packages: {stdout}{stderr}");
        return project;
    }
}
