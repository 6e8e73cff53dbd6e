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
        // Walk up from the test binaries to the checkout, then look beside it.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ToMeEngine.sln")))
            {
                var candidate = Path.Combine(dir.Parent?.FullName ?? dir.FullName, "shared");
                return Directory.Exists(candidate) ? candidate : null;
            }
        }
        return null;
    }
}

/// <summary>Paths of the test data shipped in the repository (tests/ToMeEngine.Tests/TestData, copied to the output).</summary>
internal static class RepoData
{
    public static string Path(string relative) => System.IO.Path.Combine(AppContext.BaseDirectory, "TestData", relative);

    /// <summary>The checkout the tests were built from (the folder holding ToMeEngine.sln).</summary>
    public static string CheckoutRoot { get; } = FindCheckout();

    private static string FindCheckout()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "ToMeEngine.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no ToMeEngine.sln above {AppContext.BaseDirectory}");
    }
}
