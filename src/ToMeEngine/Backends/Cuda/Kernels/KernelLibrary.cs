namespace ToMe.Backends.Cuda.Kernels;

/// <summary>
/// The engine's kernels for one context: compiles each kernel file for the device's architecture on
/// first use (through the disk cache), loads it as a module and hands out entry points.
/// </summary>
internal sealed class KernelLibrary : IDisposable
{
    private readonly CudaContext context;
    private readonly Dictionary<string, CudaModule> modules = new(StringComparer.Ordinal);

    public KernelLibrary(CudaContext context, KernelCompiler? compiler = null, bool lineInfo = false, bool archSpecific = false)
    {
        this.context = context;
        Compiler = compiler ?? KernelCompiler.WithDefaultCache();
        Options = new KernelCompileOptions(KernelCompiler.ArchFor(context.Info.ComputeMajor, context.Info.ComputeMinor, archSpecific), lineInfo);
    }

    public KernelCompiler Compiler { get; }
    public KernelCompileOptions Options { get; }

    /// <summary>The loaded module of <paramref name="fileName"/> (e.g. <c>layer_norm.cu</c>), compiling it if needed.</summary>
    public CudaModule Module(string fileName)
    {
        var source = KernelSources.Get(fileName);
        lock (modules)
        {
            if (modules.TryGetValue(source.FileName, out var module))
                return module;
            var compiled = Compiler.Compile(source, Options);
            module = new CudaModule(context, compiled.Image, source.FileName);
            modules[source.FileName] = module;
            return module;
        }
    }

    /// <summary>The entry point <paramref name="entryPoint"/> of kernel file <paramref name="fileName"/>.</summary>
    public CudaFunction Function(string fileName, string entryPoint) => Module(fileName).Function(entryPoint);

    public void Dispose()
    {
        lock (modules)
        {
            foreach (var module in modules.Values)
                module.Dispose();
            modules.Clear();
        }
    }
}
