using System.Runtime.InteropServices;
using System.Text;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda.Kernels;

/// <summary>
/// How a kernel file is compiled: the exact architecture (<c>sm_86</c>, <c>sm_90a</c>) for a CUBIN, or
/// a virtual one (<c>compute_90</c>) for PTX that the driver compiles at load, and debug switches.
/// </summary>
internal sealed record KernelCompileOptions(string Arch, bool LineInfo = false)
{
    /// <summary>True for <c>compute_XY</c>: the output is PTX, and ptxas (hence its resource report) does not run.</summary>
    public bool IsVirtual => Arch.StartsWith("compute_", StringComparison.Ordinal);

    /// <summary>The NVRTC command line; part of the cache key.</summary>
    public IReadOnlyList<string> NvrtcOptions()
    {
        var options = new List<string> { $"--gpu-architecture={Arch}", "-std=c++17" };
        if (!IsVirtual)
            options.Add("--ptxas-options=-v");
        if (LineInfo)
            options.Add("-lineinfo");
        return options;
    }
}

/// <summary>The result of compiling one kernel file for one architecture; <see cref="Image"/> is what <c>cuModuleLoadData</c> takes.</summary>
internal sealed record CompiledKernel(
    string FileName,
    string Arch,
    byte[] Image,
    string Log,
    IReadOnlyList<KernelResourceUsage> Functions,
    bool FromCache);

/// <summary>
/// Compiles kernels/*.cu with NVRTC to CUBIN for an exact architecture, serving the .cuh headers
/// from memory (no CUDA toolkit headers anywhere), through an optional disk cache.
/// </summary>
internal sealed class KernelCompiler
{
    private int compilations;

    public KernelCompiler(KernelCache? cache) => Cache = cache;

    /// <summary>A compiler using the default disk cache.</summary>
    public static KernelCompiler WithDefaultCache() => new(KernelCache.Default());

    public KernelCache? Cache { get; }

    /// <summary>How many times this compiler invoked NVRTC (cache hits do not count).</summary>
    public int CompilationCount => Volatile.Read(ref compilations);

    /// <summary>The loaded NVRTC's version; throws <see cref="CudaLibraryNotFoundException"/> when NVRTC is absent.</summary>
    public static (int Major, int Minor) NvrtcVersion() => Nvrtc.Version();

    /// <summary>
    /// The architecture to compile for on a device with compute capability major.minor: the exact
    /// <c>sm_XY</c>, or <c>sm_90a</c> on 9.0 when <paramref name="archSpecific"/> and NVRTC is 12 or newer.
    /// A device newer than this NVRTC knows gets PTX for the newest architecture NVRTC supports
    /// (<c>compute_XY</c>), which the driver compiles when loading.
    /// </summary>
    public static string ArchFor(int major, int minor, bool archSpecific = false)
    {
        var number = major * 10 + minor;
        var supported = SupportedArchsOrNull();
        if (supported is not null && !supported.Contains(number))
        {
            var older = supported.Where(a => a <= number).DefaultIfEmpty(0).Max();
            if (older == 0)
                throw new NotSupportedException($"NVRTC {NvrtcVersion()} supports no architecture at or below sm_{number}");
            return $"compute_{older}";
        }
        var arch = $"sm_{number}";
        if (archSpecific && number == 90 && NvrtcVersion().Major >= 12)
            arch += "a";
        return arch;
    }

    /// <summary>The sm_XY numbers this NVRTC can target, or null where it cannot say (before 11.2).</summary>
    public static int[]? SupportedArchsOrNull()
    {
        try
        {
            return Nvrtc.SupportedArchs();
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    public CompiledKernel Compile(KernelSource source, KernelCompileOptions options) =>
        Compile(source, KernelSources.Headers, options);

    public CompiledKernel Compile(KernelSource source, IReadOnlyList<KernelSource> headers, KernelCompileOptions options)
    {
        var nvrtcOptions = options.NvrtcOptions();
        var version = NvrtcVersion();
        var key = KernelCache.Key(source, headers, nvrtcOptions, version);
        if (Cache is not null && Cache.TryRead(source.FileName, options.Arch, key, out var cached, out var cachedLog))
            return new CompiledKernel(source.FileName, options.Arch, cached, cachedLog, PtxasInfo.Parse(cachedLog), FromCache: true);

        var (image, log) = RunNvrtc(source, headers, options.Arch, nvrtcOptions, produceCubin: !options.IsVirtual);
        Cache?.TryWrite(source.FileName, options.Arch, key, image, log);
        return new CompiledKernel(source.FileName, options.Arch, image, log, PtxasInfo.Parse(log), FromCache: false);
    }

    /// <summary>PTX for a virtual architecture (<c>compute_XY</c>), for reading the generated code; never cached.</summary>
    public string CompilePtx(KernelSource source, string computeArch)
    {
        var options = new[] { $"--gpu-architecture={computeArch}", "-std=c++17" };
        var (ptx, _) = RunNvrtc(source, KernelSources.Headers, computeArch, options, produceCubin: false);
        return Encoding.UTF8.GetString(ptx).TrimEnd('\0');
    }

    private unsafe (byte[] Output, string Log) RunNvrtc(
        KernelSource source, IReadOnlyList<KernelSource> headers, string arch, IReadOnlyList<string> options, bool produceCubin)
    {
        CudaLibraries.Require(CudaLibrary.Nvrtc);
        Interlocked.Increment(ref compilations);
        using var strings = new Utf8Strings();
        var headerTexts = stackalloc byte*[Math.Max(1, headers.Count)];
        var headerNames = stackalloc byte*[Math.Max(1, headers.Count)];
        for (var i = 0; i < headers.Count; i++)
        {
            headerTexts[i] = strings.Add(headers[i].Text);
            headerNames[i] = strings.Add(headers[i].FileName);
        }
        var optionPointers = stackalloc byte*[options.Count];
        for (var i = 0; i < options.Count; i++)
            optionPointers[i] = strings.Add(options[i]);

        NvrtcCheck.Check(Nvrtc.nvrtcCreateProgram(out var program, strings.Add(source.Text), strings.Add(source.FileName), headers.Count, headerTexts, headerNames),
            $"nvrtcCreateProgram({source.FileName})");
        try
        {
            var result = Nvrtc.nvrtcCompileProgram(program, options.Count, optionPointers);
            var log = ReadLog(program);
            if (result != NvrtcResult.Success)
                throw new KernelCompileException(source.FileName, arch, (int)result, NvrtcCheck.Name(result), log,
                    $"nvrtcCompileProgram({source.FileName}, {string.Join(' ', options)})");

            nuint size;
            byte[] output;
            if (produceCubin)
            {
                NvrtcCheck.Check(Nvrtc.nvrtcGetCUBINSize(program, out size), $"nvrtcGetCUBINSize({source.FileName})");
                output = new byte[(int)size];
                fixed (byte* p = output)
                    NvrtcCheck.Check(Nvrtc.nvrtcGetCUBIN(program, p), $"nvrtcGetCUBIN({source.FileName})");
            }
            else
            {
                NvrtcCheck.Check(Nvrtc.nvrtcGetPTXSize(program, out size), $"nvrtcGetPTXSize({source.FileName})");
                output = new byte[(int)size];
                fixed (byte* p = output)
                    NvrtcCheck.Check(Nvrtc.nvrtcGetPTX(program, p), $"nvrtcGetPTX({source.FileName})");
            }
            return (output, log);
        }
        finally
        {
            Nvrtc.nvrtcDestroyProgram(ref program);
        }
    }

    private static unsafe string ReadLog(nint program)
    {
        if (Nvrtc.nvrtcGetProgramLogSize(program, out var size) != NvrtcResult.Success || size <= 1)
            return "";
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes)
        {
            if (Nvrtc.nvrtcGetProgramLog(program, p) != NvrtcResult.Success)
                return "";
        }
        return Encoding.UTF8.GetString(bytes, 0, bytes.Length - 1);
    }

    /// <summary>Null-terminated UTF-8 copies in native memory, freed together.</summary>
    private sealed unsafe class Utf8Strings : IDisposable
    {
        private readonly List<nint> blocks = [];

        public byte* Add(string text)
        {
            var count = Encoding.UTF8.GetByteCount(text);
            var block = (byte*)NativeMemory.Alloc((nuint)count + 1);
            blocks.Add((nint)block);
            Encoding.UTF8.GetBytes(text, new Span<byte>(block, count));
            block[count] = 0;
            return block;
        }

        public void Dispose()
        {
            foreach (var block in blocks)
                NativeMemory.Free((void*)block);
            blocks.Clear();
        }
    }
}
