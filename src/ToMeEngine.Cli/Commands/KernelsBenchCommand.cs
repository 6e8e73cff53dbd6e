using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Benchmarking;

namespace ToMe.Cli.Commands;

/// <summary><c>tome kernels bench</c>: each kernel alone at ViT-Ti/S/B/L (CPU) or ViT-S/B/L (CUDA) shapes, against the machine's peaks measured in the same run.</summary>
internal static class KernelsBenchCommand
{
    public static Command Create()
    {
        var backend = new Option<string>("--backend") { Description = "cpu (the CPU kernels against the FMA peak) or cuda (every op of the GPU backend)", DefaultValueFactory = _ => "cpu" };
        var batches = new Option<string?>("--batch") { Description = "comma-separated batch sizes (default: 1,16 on cpu, 1,64,256 on cuda)" };
        var models = new Option<string?>("--models") { Description = "models whose shapes to run (default: ViT-Ti,ViT-S,ViT-B,ViT-L on cpu, ViT-S,ViT-B,ViT-L on cuda)" };
        var device = new Option<int>("--device") { Description = "cuda: the device ordinal" };
        var gemm = new Option<int>("--peak-gemm") { Description = "cuda: N of the N×N×N GEMM that measures the peak", DefaultValueFactory = _ => 8192 };
        var copy = new Option<int>("--peak-copy-mib") { Description = "cuda: MiB copied device to device to measure the bandwidth peak", DefaultValueFactory = _ => 1024 };
        var time = new Option<double>("--time-ms") { Description = "cuda: time each kernel over about this long (0: a single timed call)", DefaultValueFactory = _ => 25 };
        var threads = ModelOptions.Threads();
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var cached = new Option<bool>("--cached-weights") { Description = "cpu: time each GEMM on one weight matrix that stays in the caches (the default streams distinct copies from memory, as a forward pass does)" };
        var threadTime = new Option<bool>("--thread-time") { Description = "cpu, with --threads 1 (Linux): time each kernel and the FMA peak by the calling thread's CPU time, which other processes sharing the cores do not inflate" };
        var command = new Command("bench", "time each kernel alone at the shapes ViT-Ti/S/B/L (cpu) or ViT-S/B/L (cuda) produce, with the percentage of the peaks measured in the same run")
        {
            backend, batches, models, device, gemm, copy, time, threads, json, cached, threadTime,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var name = parse.GetValue(backend)!;
            if (name is not ("cpu" or "cuda"))
                throw new ArgumentException($"--backend '{name}' is not available (expected cpu or cuda)");
            var sizes = (parse.GetValue(batches) ?? (name == "cpu" ? "1,16" : "1,64,256")).Split(',')
                .Select(s => int.Parse(s.Trim(), CultureInfo.InvariantCulture)).ToArray();
            if (sizes.Any(b => b < 1))
                throw new ArgumentException("--batch sizes must be positive");
            var names = (parse.GetValue(models) ?? (name == "cpu" ? "ViT-Ti,ViT-S,ViT-B,ViT-L" : "ViT-S,ViT-B,ViT-L"))
                .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            return name == "cpu"
                ? Cpu(sizes, names, parse.GetValue(threads), parse.GetValue(json), parse.GetValue(cached), parse.GetValue(threadTime))
                : Cuda(sizes, names, parse.GetValue(device),
                    parse.GetValue(gemm), parse.GetValue(copy), parse.GetValue(time), parse.GetValue(json));
        }));
        return command;
    }

    private static int Cpu(int[] sizes, string[] models, int threads, bool asJson, bool cachedWeights, bool threadTime)
    {
        if (threadTime && (threads != 1 || !ThreadCpuClock.IsAvailable))
            throw new ArgumentException("--thread-time needs --threads 1 on Linux");
        var unknown = models.Where(m => !CpuKernelBenchmark.Models.Any(k => k.Name.Equals(m, StringComparison.OrdinalIgnoreCase))).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"--models {string.Join(",", unknown)}: expected among {string.Join(",", CpuKernelBenchmark.Models.Select(m => m.Name))}");
        int n = threads > 0 ? threads : Environment.ProcessorCount;
        double peak = CpuKernelBenchmark.MeasureFmaPeak(n, threadTime);
        double copy = CpuKernelBenchmark.MeasureCopyBandwidth();
        var inv = CultureInfo.InvariantCulture;
        if (!asJson)
        {
            Console.WriteLine(string.Create(inv, $"cpu: {n} threads, {CpuGemm.BestPath} micro-kernel, GEMM weights {(cachedWeights ? "cached (one copy)" : "streamed (distinct copies)")}, {(threadTime ? "thread CPU time" : "wall clock")}; measured FMA peak {peak:F1} GFLOP/s, memory copy {copy:F1} GB/s (1 thread); layer norm's % is of a copy of the same bytes on the same threads, from the caches where they fit"));
            PrintHeader();
        }
        var results = CpuKernelBenchmark.Run(n, models, sizes, peak, asJson ? null : Print, cachedWeights, threadTime);
        if (asJson)
            Console.WriteLine(Json(new { backend = "cpu", threads = n, micro_kernel = CpuGemm.BestPath.ToString(), cached_weights = cachedWeights, thread_time = threadTime, fma_peak_gflops = peak, copy_gbs = copy, results }));
        return 0;
    }

    private static int Cuda(int[] sizes, string[] models, int ordinal, int gemmSize, int copyMib, double budget, bool asJson)
    {
        var unknown = models.Where(m => !DeviceKernelBenchmark.Models.Any(k => k.Name.Equals(m, StringComparison.OrdinalIgnoreCase))).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"--models {string.Join(",", unknown)}: expected among {string.Join(",", DeviceKernelBenchmark.Models.Select(m => m.Name))}");
        if (gemmSize < 16 || copyMib < 1 || budget < 0)
            throw new ArgumentException("--peak-gemm must be at least 16, --peak-copy-mib at least 1, --time-ms 0 or more");
        if (!CudaBackend.TryCreate(out var gpu, out var reason, ordinal))
            throw new NotSupportedException(Backends.BackendFactory.NoDevice(ordinal, reason));
        using var backend = gpu!;
        DeviceNotes.WarnIfEmulated(backend.Device.IsEmulated);
        var peaks = DeviceKernelBenchmark.MeasurePeaks(backend, gemmSize, (long)copyMib << 20, budget);
        var inv = CultureInfo.InvariantCulture;
        string device = $"{backend.Device.Name} ({backend.Device.Arch})";
        if (!asJson)
        {
            Console.WriteLine(string.Create(inv,
                $"cuda: {device}, fp32; measured peaks: GEMM {peaks.GemmTflops:F2} TFLOP/s ({gemmSize}³ through the backend's Linear), copy {peaks.CopyGigabytesPerSecond:F0} GB/s ({copyMib} MiB device to device)"));
            PrintHeader();
        }
        var results = DeviceKernelBenchmark.Run(backend, models, sizes, peaks, budget, asJson ? null : Print);
        if (asJson)
            Console.WriteLine(Json(new { backend = "cuda", device, precision = "fp32", peaks, results }));
        return 0;
    }

    private static void PrintHeader()
    {
        Console.WriteLine("| kernel | model | batch | shape | ms | rate | % of peak |");
        Console.WriteLine("|---|---|---:|---|---:|---:|---:|");
    }

    private static void Print(KernelTiming r) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {r.Kernel} | {r.Model} | {r.Batch} | {r.Shape} | {r.Milliseconds:F3} | {r.Rate:F2} {r.Unit} | {r.PercentOfPeak:F0}% |"));

    private static string Json(object value) =>
        JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
}
