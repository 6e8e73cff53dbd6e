using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace ToMe.Backends.Cuda.Native;

/// <summary>The native CUDA libraries the engine binds.</summary>
internal enum CudaLibrary
{
    Driver,
    Nvrtc,
    Cublas,
    CublasLt,
}

/// <summary>
/// Finds and loads the CUDA libraries. One <see cref="NativeLibrary.SetDllImportResolver"/> for the
/// assembly maps the logical names used by the bindings (<c>tome_cuda</c>, <c>tome_nvrtc</c>, ...) to
/// the first candidate file that loads. Search order: <c>TOME_CUDA_LIB_DIR</c> (a directory list),
/// <c>CUDA_PATH</c>/<c>CUDA_HOME</c>, <c>LD_LIBRARY_PATH</c> (or <c>PATH</c> on Windows),
/// /usr/local/cuda*, Python wheel folders (site-packages/nvidia/*/lib), then the system loader.
/// </summary>
internal static class CudaLibraries
{
    public const string DriverName = "tome_cuda";
    public const string NvrtcName = "tome_nvrtc";
    public const string CublasName = "tome_cublas";
    public const string CublasLtName = "tome_cublasLt";

    private static readonly object gate = new();
    private static readonly Dictionary<CudaLibrary, LoadResult> loaded = [];
    private static int resolverInstalled;

    /// <summary>Installs the assembly's resolver; called from every binding class's static constructor.</summary>
    public static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref resolverInstalled, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
    }

    /// <summary>Loads <paramref name="library"/> or throws <see cref="CudaLibraryNotFoundException"/> listing every path tried.</summary>
    public static IntPtr Require(CudaLibrary library)
    {
        var result = Load(library);
        if (result.Handle == IntPtr.Zero)
            throw new CudaLibraryNotFoundException(library, result.Tried);
        return result.Handle;
    }

    /// <summary>True when <paramref name="library"/> loads; <paramref name="tried"/> lists every path tried.</summary>
    public static bool TryLoad(CudaLibrary library, out string? path, out IReadOnlyList<string> tried)
    {
        var result = Load(library);
        path = result.Path;
        tried = result.Tried;
        return result.Handle != IntPtr.Zero;
    }

    private static LoadResult Load(CudaLibrary library)
    {
        EnsureResolver();
        lock (gate)
        {
            if (loaded.TryGetValue(library, out var result))
                return result;
            // cuBLAS needs cuBLASLt (a NEEDED entry): loading it first lets the dynamic loader
            // satisfy that dependency from wherever it was found, e.g. a wheel folder without RPATH.
            if (library == CudaLibrary.Cublas)
                Load(CudaLibrary.CublasLt);
            result = Probe(FileNames(library), SearchDirectories(library));
            if (library == CudaLibrary.Nvrtc && result.Handle != IntPtr.Zero)
                PreloadNvrtcBuiltins(result.Path);
            loaded[library] = result;
            return result;
        }
    }

    /// <summary>
    /// NVRTC opens its builtins library by name at the first compilation; when NVRTC came from a
    /// directory the loader does not search, load the builtins beside it first.
    /// </summary>
    private static void PreloadNvrtcBuiltins(string? nvrtcPath)
    {
        var dir = nvrtcPath is null || !Path.IsPathRooted(nvrtcPath) ? null : Path.GetDirectoryName(nvrtcPath);
        if (dir is null || !Directory.Exists(dir))
            return;
        try
        {
            var pattern = OperatingSystem.IsWindows() ? "nvrtc-builtins64_*.dll" : "libnvrtc-builtins.so.*";
            foreach (var builtins in Directory.GetFiles(dir, pattern).OrderByDescending(f => f, StringComparer.Ordinal))
                NativeLibrary.TryLoad(builtins, out _);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        CudaLibrary? library = libraryName switch
        {
            DriverName => CudaLibrary.Driver,
            NvrtcName => CudaLibrary.Nvrtc,
            CublasName => CudaLibrary.Cublas,
            CublasLtName => CudaLibrary.CublasLt,
            _ => null,
        };
        return library is null ? IntPtr.Zero : Load(library.Value).Handle;
    }

    /// <summary>File names to try, newest CUDA major first.</summary>
    public static string[] FileNames(CudaLibrary library)
    {
        if (OperatingSystem.IsWindows())
        {
            return library switch
            {
                CudaLibrary.Driver => ["nvcuda.dll"],
                CudaLibrary.Nvrtc => ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"],
                CudaLibrary.Cublas => ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"],
                _ => ["cublasLt64_13.dll", "cublasLt64_12.dll", "cublasLt64_11.dll"],
            };
        }
        return library switch
        {
            CudaLibrary.Driver => ["libcuda.so.1", "libcuda.so"],
            CudaLibrary.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
            CudaLibrary.Cublas => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
            _ => ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"],
        };
    }

    /// <summary>Directories searched before the system loader, in order, without duplicates.</summary>
    public static IReadOnlyList<string> SearchDirectories(CudaLibrary library)
    {
        var dirs = new List<string>();
        void AddList(string? list)
        {
            if (string.IsNullOrWhiteSpace(list))
                return;
            foreach (var dir in list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                dirs.Add(dir);
        }
        void AddToolkit(string? root)
        {
            if (string.IsNullOrWhiteSpace(root))
                return;
            foreach (var sub in new[] { "lib64", "lib", "bin", Path.Combine("bin", "x64"), Path.Combine("lib", "x64") })
                dirs.Add(Path.Combine(root, sub));
        }

        AddList(Environment.GetEnvironmentVariable("TOME_CUDA_LIB_DIR"));
        AddToolkit(Environment.GetEnvironmentVariable("CUDA_PATH"));
        AddToolkit(Environment.GetEnvironmentVariable("CUDA_HOME"));
        AddList(Environment.GetEnvironmentVariable(OperatingSystem.IsWindows() ? "PATH" : "LD_LIBRARY_PATH"));
        if (!OperatingSystem.IsWindows())
        {
            if (library == CudaLibrary.Driver)
            {
                // The driver lives with the system libraries (and under /usr/lib/wsl/lib on WSL).
                dirs.AddRange(["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib"]);
            }
            else
            {
                dirs.Add("/usr/local/cuda/lib64");
                dirs.AddRange(SortedSubdirectories("/usr/local", "cuda-*").Select(d => Path.Combine(d, "lib64")));
            }
        }
        if (library != CudaLibrary.Driver)
        {
            foreach (var sitePackages in PythonSitePackages())
                dirs.AddRange(WheelLibraryDirectories(sitePackages, library));
        }
        return dirs.Select(Normalize).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>nvidia/* wheel folders holding <paramref name="library"/>: cuda_nvrtc, cublas, and the merged cu13 layout.</summary>
    private static IEnumerable<string> WheelLibraryDirectories(string sitePackages, CudaLibrary library)
    {
        var nvidia = Path.Combine(sitePackages, "nvidia");
        if (!Directory.Exists(nvidia))
            yield break;
        var libFolder = OperatingSystem.IsWindows() ? "bin" : "lib";
        var package = library == CudaLibrary.Nvrtc ? "cuda_nvrtc" : "cublas";
        yield return Path.Combine(nvidia, package, libFolder);
        foreach (var dir in SortedSubdirectories(nvidia, "cu1*"))
            yield return Path.Combine(dir, libFolder);
    }

    /// <summary>site-packages folders of common Python installs, found without running Python.</summary>
    private static IEnumerable<string> PythonSitePackages()
    {
        var prefixes = new List<string>();
        foreach (var variable in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
        {
            var value = Environment.GetEnvironmentVariable(variable);
            if (!string.IsNullOrEmpty(value))
                prefixes.Add(value);
        }
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (OperatingSystem.IsWindows())
        {
            var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
            prefixes.AddRange(SortedSubdirectories(Path.Combine(local, "Programs", "Python"), "Python3*"));
            prefixes.AddRange(SortedSubdirectories(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "Python"), "Python3*"));
            foreach (var prefix in prefixes)
                yield return Path.Combine(prefix, "Lib", "site-packages");
        }
        else
        {
            prefixes.AddRange([Path.Combine(home, ".local"), "/usr/local", "/usr", "/opt/conda"]);
            prefixes.AddRange(SortedSubdirectories(Path.Combine(home, ".pyenv", "versions"), "*"));
            foreach (var prefix in prefixes)
            {
                foreach (var lib in new[] { "lib", "lib64" })
                {
                    foreach (var python in SortedSubdirectories(Path.Combine(prefix, lib), "python3*"))
                    {
                        yield return Path.Combine(python, "site-packages");
                        yield return Path.Combine(python, "dist-packages");
                    }
                }
            }
        }
        foreach (var entry in (Environment.GetEnvironmentVariable("PYTHONPATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            yield return entry;
    }

    private static IEnumerable<string> SortedSubdirectories(string dir, string pattern)
    {
        try
        {
            if (!Directory.Exists(dir))
                return [];
            return Directory.GetDirectories(dir, pattern).OrderByDescending(d => d, StringComparer.Ordinal).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string Normalize(string dir)
    {
        try
        {
            return Path.GetFullPath(dir);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return dir;
        }
    }

    /// <summary>Tries every name in every directory, then every bare name through the system loader.</summary>
    public static LoadResult Probe(IReadOnlyList<string> fileNames, IEnumerable<string> directories)
    {
        var tried = new List<string>();
        foreach (var dir in directories)
        {
            if (!Directory.Exists(dir))
            {
                tried.Add($"{Path.Combine(dir, "{" + string.Join(",", fileNames) + "}")} (no such directory)");
                continue;
            }
            foreach (var name in fileNames)
            {
                var path = Path.Combine(dir, name);
                if (!File.Exists(path))
                {
                    tried.Add($"{path} (absent)");
                    continue;
                }
                try
                {
                    return new LoadResult(NativeLibrary.Load(path), path, tried);
                }
                catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
                {
                    // The loader's message names the real cause (a missing dependency, wrong architecture).
                    tried.Add($"{path} (exists but failed to load: {e.Message.ReplaceLineEndings(" ")})");
                }
            }
        }
        foreach (var name in fileNames)
        {
            if (NativeLibrary.TryLoad(name, out var handle))
                return new LoadResult(handle, name, tried);
            tried.Add($"{name} (system loader)");
        }
        return new LoadResult(IntPtr.Zero, null, tried);
    }

    internal sealed record LoadResult(IntPtr Handle, string? Path, IReadOnlyList<string> Tried);
}

/// <summary>A CUDA library could not be loaded from any candidate location.</summary>
internal sealed class CudaLibraryNotFoundException : Exception
{
    internal CudaLibraryNotFoundException(CudaLibrary library, IReadOnlyList<string> tried)
        : base(FormatMessage(library, tried))
    {
        Tried = tried;
    }

    /// <summary>Every path (or bare name given to the system loader) that was tried, in order.</summary>
    public IReadOnlyList<string> Tried { get; }

    internal static string Describe(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => "CUDA driver",
        CudaLibrary.Nvrtc => "NVRTC",
        CudaLibrary.Cublas => "cuBLAS",
        _ => "cuBLASLt",
    };

    private static string FormatMessage(CudaLibrary library, IReadOnlyList<string> tried)
    {
        var text = new StringBuilder();
        text.Append($"no {Describe(library)} library found (set TOME_CUDA_LIB_DIR to the folder holding it). Tried:");
        foreach (var path in tried)
            text.Append("\n  ").Append(path);
        return text.ToString();
    }
}
