using System.Reflection;

namespace ToMe.Backends.Cuda.Kernels;

/// <summary>One kernel file's name (e.g. <c>layer_norm.cu</c>) and text.</summary>
internal sealed record KernelSource(string FileName, string Text);

/// <summary>
/// The kernels/*.cu files and their headers (kernels/*.cuh), embedded in the library as resources
/// named <c>kernels/NAME</c>. Headers are served to NVRTC from memory under their bare file name.
/// </summary>
internal static class KernelSources
{
    private const string Prefix = "kernels/";
    private static readonly Lazy<(IReadOnlyList<KernelSource> Kernels, IReadOnlyList<KernelSource> Headers)> all = new(Load);

    /// <summary>Every .cu file, sorted by name.</summary>
    public static IReadOnlyList<KernelSource> Kernels => all.Value.Kernels;

    /// <summary>Every .cuh header, sorted by name; each is offered to every compilation.</summary>
    public static IReadOnlyList<KernelSource> Headers => all.Value.Headers;

    /// <summary>The kernel file named <paramref name="fileName"/> (with or without the .cu extension).</summary>
    public static KernelSource Get(string fileName)
    {
        var name = fileName.EndsWith(".cu", StringComparison.Ordinal) ? fileName : fileName + ".cu";
        return Kernels.FirstOrDefault(k => k.FileName == name)
            ?? throw new ArgumentException($"no kernel file {name}; embedded: {string.Join(", ", Kernels.Select(k => k.FileName))}");
    }

    private static (IReadOnlyList<KernelSource>, IReadOnlyList<KernelSource>) Load()
    {
        var assembly = typeof(KernelSources).Assembly;
        var kernels = new List<KernelSource>();
        var headers = new List<KernelSource>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var source = new KernelSource(resource[Prefix.Length..], Read(assembly, resource));
            if (resource.EndsWith(".cu", StringComparison.Ordinal))
                kernels.Add(source);
            else if (resource.EndsWith(".cuh", StringComparison.Ordinal))
                headers.Add(source);
        }
        return (kernels, headers);
    }

    private static string Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"embedded resource {resource} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
