using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using ToMe.Backends.Cuda;

namespace ToMe.Cli.Commands;

/// <summary>
/// <c>tome devices [--json]</c>: the CUDA libraries found and every GPU (or the emulated CUDA device, named as such);
/// exits non-zero without a usable device.
/// </summary>
internal static class DevicesCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON document." };
        var command = new Command("devices", "List the CUDA driver, NVRTC and cuBLAS versions found and each GPU.");
        command.Options.Add(json);
        command.SetAction(parse => Run(parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, parse.GetValue(json)));
        return command;
    }

    private static int Run(TextWriter output, TextWriter error, bool json)
    {
        var info = CudaEnvironment.Probe();
        if (json)
            WriteJson(output, info);
        else
            WriteText(output, error, info);
        return info.HasDevice ? 0 : 1;
    }

    private static void WriteText(TextWriter output, TextWriter error, CudaEnvironmentInfo info)
    {
        foreach (var library in new[] { info.Driver, info.Nvrtc, info.Cublas, info.CublasLt })
        {
            var version = library.Version is null ? "" : $" {library.Version}";
            output.WriteLine(library.Found
                ? $"{library.Name,-12}{version} ({library.Path}){(library.Error is null ? "" : " - " + library.Error)}"
                : $"{library.Name,-12} not found");
        }
        if (!info.Driver.Found)
        {
            error.WriteLine("no CUDA driver found (tried: " + string.Join(", ", info.Driver.Tried) + ")");
            return;
        }
        if (info.DeviceError is not null)
        {
            error.WriteLine(info.DeviceError);
            return;
        }
        if (CudaDriver.EmulatorDescription is { } emulator)
            output.WriteLine($"emulated device: {emulator}. It proves logic, never speed: --backend cuda runs on it, auto never does.");
        foreach (var d in info.Devices)
        {
            output.WriteLine($"{(d.IsEmulated ? "Emulated device" : "GPU")} {d.Ordinal}: {d.Name}, {d.Arch}, {d.MultiprocessorCount} SMs, " +
                $"{d.TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB, L2 {d.L2CacheBytes / (1024.0 * 1024):F1} MiB, " +
                $"smem/block {d.MaxSharedMemoryPerBlockOptin / 1024} KiB, memory pools {(d.MemoryPoolsSupported ? "yes" : "no")}");
        }
    }

    private static void WriteJson(TextWriter output, CudaEnvironmentInfo info)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteBoolean("hasDevice", info.HasDevice);
            foreach (var (key, library) in new[] { ("driver", info.Driver), ("nvrtc", info.Nvrtc), ("cublas", info.Cublas), ("cublasLt", info.CublasLt) })
            {
                w.WriteStartObject(key);
                w.WriteBoolean("found", library.Found);
                w.WriteString("path", library.Path);
                w.WriteString("version", library.Version);
                w.WriteString("error", library.Error);
                w.WriteStartArray("tried");
                foreach (var path in library.Tried)
                    w.WriteStringValue(path);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteString("deviceError", info.DeviceError);
            w.WriteString("emulator", CudaDriver.EmulatorDescription);
            w.WriteStartArray("devices");
            foreach (var d in info.Devices)
            {
                w.WriteStartObject();
                w.WriteNumber("ordinal", d.Ordinal);
                w.WriteString("name", d.Name);
                w.WriteString("arch", d.Arch);
                w.WriteBoolean("emulated", d.IsEmulated);
                w.WriteNumber("multiprocessors", d.MultiprocessorCount);
                w.WriteNumber("memoryBytes", d.TotalMemoryBytes);
                w.WriteNumber("l2CacheBytes", d.L2CacheBytes);
                w.WriteNumber("maxSharedBytesPerBlock", d.MaxSharedMemoryPerBlockOptin);
                w.WriteNumber("clockKHz", d.ClockRateKHz);
                w.WriteNumber("memoryClockKHz", d.MemoryClockRateKHz);
                w.WriteNumber("memoryBusBits", d.MemoryBusWidthBits);
                w.WriteBoolean("memoryPools", d.MemoryPoolsSupported);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
