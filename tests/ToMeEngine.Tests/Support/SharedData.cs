namespace ToMe.Tests.Support;

/// <summary>
/// Locates the read-only <c>shared/</c> folder that sits beside the checkout (models, ImageNet samples,
/// reference logits, the full fixture set). Tests that need it skip with the reason where it is absent.
/// <c>TOME_SHARED</c> overrides the location.
/// </summary>
internal static class SharedData
{
    private static readonly Lazy<string?> root = new(Find);

    public static string? Root => root.Value;

    /// <summary>The absolute path of <paramref name="relative"/> inside shared/, or a skip naming what is missing.</summary>
    public static string Require(string relative)
    {
        var dir = Root;
        if (dir is null)
            Assert.Skip($"needs ../shared/{relative}: no shared/ folder beside the checkout (set TOME_SHARED to point at one)");
        var path = Path.Combine(dir, relative);
        if (!File.Exists(path) && !Directory.Exists(path))
            Assert.Skip($"needs {path}, which is absent");
        return path;
    }

    private static string? Find()
    {
        var env = Environment.GetEnvironmentVariable("TOME_SHARED");
        if (!string.IsNullOrEmpty(env))
            return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        // Beside the checkout that holds the test binaries.
        if (RepoData.Root is not { } checkout)
            return null;
        var candidate = Path.Combine(Path.GetDirectoryName(checkout) ?? checkout, "shared");
        return Directory.Exists(candidate) ? candidate : null;
    }
}

/// <summary>Paths of the test data shipped in the repository (tests/ToMeEngine.Tests/TestData, copied to the output).</summary>
internal static class RepoData
{
    public static string Path(string relative) => System.IO.Path.Combine(AppContext.BaseDirectory, "TestData", relative);

    /// <summary>
    /// The checkout holding the test binaries (the folder of ToMeEngine.sln), else the one TOME_CHECKOUT names (a published
    /// copy of the tests, as the device check runs them beside the checkout it travelled with), else null.
    /// </summary>
    public static string? Root { get; } = FindRoot();

    /// <summary><see cref="Root"/>, for tests that read the checkout's own files (README, scripts, samples).</summary>
    public static string CheckoutRoot => Root ?? throw new InvalidOperationException($"no ToMeEngine.sln above {AppContext.BaseDirectory}");

    /// <summary>The build configuration of the test binaries (Release or Debug), for building or running siblings alike.</summary>
    public static string Configuration =>
        AppContext.BaseDirectory.Contains($"{System.IO.Path.DirectorySeparatorChar}Debug{System.IO.Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";

    private static string? FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "ToMeEngine.sln")))
                return dir.FullName;
        return Environment.GetEnvironmentVariable("TOME_CHECKOUT") is { Length: > 0 } named && File.Exists(System.IO.Path.Combine(named, "ToMeEngine.sln"))
            ? System.IO.Path.GetFullPath(named) : null;
    }
}
