using ToMe.Tests.Support;

namespace ToMe.Tests.FirstRun;

/// <summary>The README's C# example is samples/QuickStart/Program.cs, which the solution builds; and it runs.</summary>
public sealed class ReadmeExampleTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("tome-quickstart-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void TheReadmeCSharpExampleIsTheQuickStartSample()
    {
        var readme = File.ReadAllText(Path.Combine(RepoData.CheckoutRoot, "README.md")).ReplaceLineEndings("\n");
        var section = readme[readme.IndexOf("### From C#", StringComparison.Ordinal)..];
        int start = section.IndexOf("```csharp\n", StringComparison.Ordinal) + "```csharp\n".Length;
        var example = section[start..(section.IndexOf("\n```", start, StringComparison.Ordinal) + 1)];
        var sample = File.ReadAllText(Path.Combine(RepoData.CheckoutRoot, "samples", "QuickStart", "Program.cs")).ReplaceLineEndings("\n");
        Assert.Equal(sample, example);
    }

    [Fact]
    public void TheQuickStartSampleRuns()
    {
        QuickStartSample.WriteInputs(dir);
        var (code, stdout, stderr) = TomeProcess.RunProgram("dotnet", [Path.Combine(AppContext.BaseDirectory, "QuickStart.dll")], workingDirectory: dir);
        Assert.True(code == 0, stderr);
        QuickStartSample.AssertOutput(stdout);
    }
}
