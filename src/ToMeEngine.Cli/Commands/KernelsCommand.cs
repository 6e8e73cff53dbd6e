using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using ToMe.Backends.Cuda.Kernels;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Cli.Commands;

/// <summary><c>tome kernels compile --arch sm_70,sm_86,sm_90 [--json] [--lineinfo] [--no-cache]</c>.</summary>
internal static partial class KernelsCommand
{
    [GeneratedRegex(@"^(sm|compute)_\d{1,3}a?$")]
    private static partial Regex ArchPattern();

    public static Command Create()
    {
        var arch = new Option<string>("--arch")
        {
            Description = "Comma-separated target architectures (sm_90a needs NVRTC 12+). Default: sm_70,sm_86,sm_90, less those this NVRTC cannot target.",
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON document instead of a table." };
        var lineInfo = new Option<bool>("--lineinfo") { Description = "Compile with -lineinfo (source lines for profilers)." };
        var noCache = new Option<bool>("--no-cache") { Description = "Compile everything with NVRTC, bypassing the kernel cache." };

        var compile = new Command("compile", "Compile every kernel for each architecture with NVRTC and report registers, shared memory and spills.");
        compile.Options.Add(arch);
        compile.Options.Add(json);
        compile.Options.Add(lineInfo);
        compile.Options.Add(noCache);
        compile.SetAction(parse => Run(
            parse.InvocationConfiguration.Output,
            parse.InvocationConfiguration.Error,
            parse.GetValue(arch)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            parse.GetValue(json),
            parse.GetValue(lineInfo),
            parse.GetValue(noCache)));

        var kernels = new Command("kernels", "Build and inspect the CUDA kernels.");
        kernels.Subcommands.Add(compile);
        kernels.Subcommands.Add(KernelsTestCommand.Create());
        kernels.Subcommands.Add(KernelsBenchCommand.Create());
        return kernels;
    }

    private static readonly string[] DefaultArchs = ["sm_70", "sm_86", "sm_90"];

    private static int Run(TextWriter output, TextWriter error, string[]? requestedArchs, bool json, bool lineInfo, bool noCache)
    {
        // Refuse a malformed name before loading NVRTC, so a typo costs one line rather than a failed compile per kernel.
        if (requestedArchs is [])
        {
            error.WriteLine("error: --arch is empty (expected a comma-separated list such as sm_70,sm_86,sm_90; omit --arch for the default)");
            return 2;
        }
        foreach (var name in requestedArchs ?? [])
        {
            if (ArchPattern().IsMatch(name))
                continue;
            var digits = new string(name.Where(char.IsDigit).ToArray());
            error.WriteLine($"error: --arch '{name}' is not a CUDA architecture (expected sm_XY or compute_XY, e.g. sm_86)" +
                            (digits.Length is 2 or 3 ? $"; did you mean sm_{digits}?" : ""));
            return 2;
        }
        (int Major, int Minor) version;
        try
        {
            version = KernelCompiler.NvrtcVersion();
        }
        catch (CudaLibraryNotFoundException e)
        {
            error.WriteLine(e.Message);
            return 2;
        }

        if (requestedArchs?.FirstOrDefault(a => int.TryParse(new string(a.Where(char.IsDigit).ToArray()), out int n) && n < KernelBuildReport.MinimumArch) is { } old)
        {
            error.WriteLine($"error: --arch {old}: the engine's kernels need sm_{KernelBuildReport.MinimumArch} (Volta) or newer");
            return 2;
        }
        if (requestedArchs?.FirstOrDefault(a => !KernelBuildReport.IsSupported(a)) is { } unsupported)
        {
            var supported = KernelCompiler.SupportedArchsOrNull() ?? [];
            error.WriteLine($"error: NVRTC {version.Major}.{version.Minor} cannot target {unsupported}; it targets {string.Join(", ", supported.Select(a => $"sm_{a}"))}" +
                            (KernelBuildReport.IsArchSpecific(unsupported) ? $" (architecture-specific targets such as {unsupported} need NVRTC 12.0 or later)" : ""));
            return 2;
        }
        var archs = requestedArchs ?? DefaultArchs.Where(KernelBuildReport.IsSupported).ToArray();
        foreach (var dropped in requestedArchs is null ? DefaultArchs.Except(archs) : [])
            error.WriteLine($"note: NVRTC {version.Major}.{version.Minor} cannot target {dropped}; skipped");
        var compiler = new KernelCompiler(noCache ? null : KernelCache.Default());
        var results = KernelBuildReport.CompileAll(compiler, archs, lineInfo);
        if (json)
            WriteJson(output, version, compiler, results);
        else
            WriteTable(output, version, compiler, results);

        foreach (var failed in results.Where(r => !r.Success))
            error.WriteLine($"\n{failed.FileName} ({failed.Arch}) failed:\n{failed.Error}");
        return results.All(r => r.Success) ? 0 : 1;
    }

    private static void WriteTable(TextWriter output, (int Major, int Minor) version, KernelCompiler compiler, IReadOnlyList<KernelBuildResult> results)
    {
        output.WriteLine($"NVRTC {version.Major}.{version.Minor}; cache: {compiler.Cache?.Directory ?? "off"}");
        output.WriteLine($"{"file",-22} {"arch",-10} {"status",-6} {"cubin",8}  {"function",-28} {"regs",4} {"smem",6} {"stack",5} {"spill st/ld",11}");
        foreach (var r in results)
        {
            var status = r.Success ? (r.FromCache ? "cached" : "ok") : "FAILED";
            if (r.Functions.Count == 0)
            {
                output.WriteLine($"{r.FileName,-22} {r.Arch,-10} {status,-6} {r.CubinBytes,8}");
                continue;
            }
            foreach (var f in r.Functions)
                output.WriteLine($"{r.FileName,-22} {r.Arch,-10} {status,-6} {r.CubinBytes,8}  {f.Function,-28} {f.Registers,4} {f.SharedBytes,6} {f.StackFrameBytes,5} {$"{f.SpillStoreBytes}/{f.SpillLoadBytes}",11}");
        }
        output.WriteLine($"{results.Count(r => r.Success)}/{results.Count} compiled, {compiler.CompilationCount} by NVRTC, {results.Count(r => r.FromCache)} from cache");
    }

    private static void WriteJson(TextWriter output, (int Major, int Minor) version, KernelCompiler compiler, IReadOnlyList<KernelBuildResult> results)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("nvrtcVersion", $"{version.Major}.{version.Minor}");
            w.WriteString("cacheDirectory", compiler.Cache?.Directory);
            w.WriteBoolean("success", results.All(r => r.Success));
            w.WriteStartArray("kernels");
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("file", r.FileName);
                w.WriteString("arch", r.Arch);
                w.WriteBoolean("success", r.Success);
                w.WriteNumber("cubinBytes", r.CubinBytes);
                w.WriteBoolean("fromCache", r.FromCache);
                w.WriteStartArray("functions");
                foreach (var f in r.Functions)
                {
                    w.WriteStartObject();
                    w.WriteString("name", f.Function);
                    w.WriteNumber("registers", f.Registers);
                    w.WriteNumber("sharedBytes", f.SharedBytes);
                    w.WriteNumber("constantBytes", f.ConstantBytes);
                    w.WriteNumber("stackFrameBytes", f.StackFrameBytes);
                    w.WriteNumber("spillStoreBytes", f.SpillStoreBytes);
                    w.WriteNumber("spillLoadBytes", f.SpillLoadBytes);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteString("error", r.Error);
                if (!r.Success)
                    w.WriteString("log", r.Log);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
