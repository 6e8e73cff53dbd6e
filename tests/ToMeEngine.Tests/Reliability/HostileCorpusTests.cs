using System.Diagnostics;
using System.Text;
using ToMe.Tests.Support;

namespace ToMe.Tests.Reliability;

/// <summary>The CPU engine every hostile-input test checks against: loaded once, with its answer for a good image.</summary>
public sealed class GoodEngine : IDisposable
{
    public static string GoodImage => RepoData.Path("images/tiny_420_q90.jpg");

    public ToMeEngine Engine { get; } = ToMeEngine.Load(Fixtures.ModelPath("vit_p14_d3"), new EngineOptions { Backend = BackendKind.Cpu, Threads = 1 });

    public IReadOnlyList<Prediction> Baseline { get; }

    public GoodEngine() => Baseline = Engine.Classify(GoodImage);

    /// <summary>The engine still gives exactly its earlier answer.</summary>
    public void AssertUnharmed(string after)
    {
        var now = Engine.Classify(GoodImage);
        Assert.True(Baseline.SequenceEqual(now), $"after {after} the good image classifies differently");
    }

    public void Dispose() => Engine.Dispose();
}

/// <summary>
/// Feeds every file of TestData/hostile to the public API: each must fail with the exception and message the
/// manifest names, within a second, leave no mapping of the file behind, and leave the engine giving the same answer.
/// </summary>
public sealed class HostileCorpusTests(GoodEngine good) : IClassFixture<GoodEngine>
{
    private static readonly TimeSpan PerInput = TimeSpan.FromSeconds(1);

    public static string ManifestPath => RepoData.Path(Path.Combine(HostileCorpus.Folder, "manifest.csv"));

    public static IReadOnlyList<HostileCase> Manifest() =>
        File.ReadAllLines(ManifestPath).Skip(1).Where(l => l.Length > 0).Select(ParseLine).ToList();

    public static TheoryData<string> Cases() => new(Manifest().Select(c => c.Path));

    [Theory]
    [MemberData(nameof(Cases))]
    public void HostileInputFailsCleanly(string name)
    {
        var c = Manifest().Single(m => m.Path == name);
        var path = RepoData.Path(Path.Combine(HostileCorpus.Folder, c.Path));
        var clock = Stopwatch.StartNew();
        Exception? error = null;
        try
        {
            if (c.Kind == "model")
                ToMeEngine.Load(path, new EngineOptions { Backend = BackendKind.Cpu, Threads = 1 }).Dispose();
            else
                good.Engine.Classify(path);
        }
        catch (Exception e)
        {
            error = e;
        }
        clock.Stop();
        Assert.True(clock.Elapsed < PerInput, $"{name}: took {clock.Elapsed.TotalMilliseconds:F0} ms");
        if (c.Exception == "none")
            Assert.Null(error);
        else
        {
            Assert.NotNull(error);
            Assert.True(error.GetType().Name == c.Exception, $"{name}: expected {c.Exception}, got {error.GetType().Name}: {error.Message}");
            Assert.True(error.Message.Contains(c.Fragment, StringComparison.Ordinal), $"{name}: '{c.Fragment}' not in: {error.Message}");
            // A folder's errors name the file inside it that is wrong.
            string[] names = Directory.Exists(path) ? [Path.GetFileName(path), "model.safetensors", "config.json"] : [Path.GetFileName(path)];
            Assert.True(names.Any(n => error.Message.Contains(n, StringComparison.Ordinal)), $"{name}: the message does not name the file: {error.Message}");
            Assert.DoesNotContain('\n', error.Message);
        }
        Assert.DoesNotContain(path, ResourceProbe.MappedFiles());
        good.AssertUnharmed(name);
    }

    [Fact]
    public void CorpusHasAtLeastFiftyFilesOfEveryKind()
    {
        var cases = Manifest();
        Assert.True(cases.Count >= 50, $"{cases.Count} cases");
        foreach (var prefix in new[] { "st_", "cfg_", "hub_", "png_", "jpg_", "bmp_", "ppm_" })
            Assert.Contains(cases, c => c.Path.StartsWith(prefix, StringComparison.Ordinal));
    }

    /// <summary>The committed files are exactly what the generator makes; TOME_REGENERATE_HOSTILE=1 rewrites them in the source tree.</summary>
    [Fact]
    public void CorpusMatchesGenerator()
    {
        var generated = HostileCorpus.Generate().ToList();
        var manifest = new StringBuilder("file,kind,exception,fragment\n");
        foreach (var (c, _) in generated)
            manifest.Append($"{c.Path},{c.Kind},{c.Exception},\"{c.Fragment.Replace("\"", "\"\"")}\"\n");
        if (Environment.GetEnvironmentVariable("TOME_REGENERATE_HOSTILE") == "1")
        {
            var root = Path.Combine(SourceTestData(), HostileCorpus.Folder);
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
            foreach (var (_, files) in generated)
                foreach (var (name, bytes) in files)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, name))!);
                    File.WriteAllBytes(Path.Combine(root, name), bytes);
                }
            File.WriteAllText(Path.Combine(root, "manifest.csv"), manifest.ToString());
            return;
        }
        Assert.Equal(manifest.ToString(), File.ReadAllText(ManifestPath));
        foreach (var (_, files) in generated)
            foreach (var (name, bytes) in files)
                Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(RepoData.Path(Path.Combine(HostileCorpus.Folder, name)))),
                    $"{name} differs from the generator's output (run with TOME_REGENERATE_HOSTILE=1)");
    }

    private static HostileCase ParseLine(string line)
    {
        var parts = line.Split(',', 4);
        var fragment = parts[3];
        if (fragment.StartsWith('"'))
            fragment = fragment[1..^1].Replace("\"\"", "\"");
        return new HostileCase(parts[0], parts[1], parts[2], fragment);
    }

    /// <summary>tests/ToMeEngine.Tests/TestData in the source tree, found upward from the test binaries.</summary>
    internal static string SourceTestData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "ToMeEngine.Tests", "TestData");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/ToMeEngine.Tests/TestData not found above " + AppContext.BaseDirectory);
    }
}
