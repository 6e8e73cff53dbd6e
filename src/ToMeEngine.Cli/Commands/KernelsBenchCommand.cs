using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ToMe.Backends.Cpu;
using ToMe.Benchmarking;

namespace ToMe.Cli.Commands;

/// <summary><c>tome kernels bench</c>: each kernel alone at ViT-S/B/L shapes, against the machine's measured peaks.</summary>
internal static class KernelsBenchCommand
{
    public static Command Create()
    {
        var backend = new Option<string>("--backend") { Description = "cpu (the CUDA kernels need a GPU machine)", DefaultValueFactory = _ => "cpu" };
        var batches = new Option<string>("--batch") { Description = "comma-separated batch sizes", DefaultValueFactory = _ => "1,16" };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0 = all cores)" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var command = new Command("bench", "time each kernel alone at the shapes ViT-S/B/L produce, with the percentage of the measured peak")
        {
            backend, batches, threads, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(backend) is not "cpu")
                throw new NotSupportedException($"--backend {parse.GetValue(backend)}: only the CPU kernels can be benchmarked by this build without a GPU (expected cpu)");
            var sizes = parse.GetValue(batches)!.Split(',').Select(s => int.Parse(s.Trim(), CultureInfo.InvariantCulture)).ToArray();
            if (sizes.Any(b => b < 1))
                throw new ArgumentException("--batch sizes must be positive");
            int n = parse.GetValue(threads) is > 0 and var t ? t : Environment.ProcessorCount;
            double peak = CpuKernelBenchmark.MeasureFmaPeak(n);
            double copy = CpuKernelBenchmark.MeasureCopyBandwidth();
            var inv = CultureInfo.InvariantCulture;
            bool asJson = parse.GetValue(json);
            if (!asJson)
            {
                Console.WriteLine(string.Create(inv, $"cpu: {n} threads, {CpuGemm.BestPath} micro-kernel; measured FMA peak {peak:F1} GFLOP/s, copy {copy:F1} GB/s"));
                Console.WriteLine("| kernel | model | batch | shape | ms | rate | % of peak |");
                Console.WriteLine("|---|---|---:|---|---:|---:|---:|");
            }
            var results = CpuKernelBenchmark.Run(n, sizes, peak, copy, asJson ? null : r => Console.WriteLine(string.Create(inv,
                $"| {r.Kernel} | {r.Model} | {r.Batch} | {r.Shape} | {r.Milliseconds:F3} | {r.Rate:F1} {r.Unit} | {r.PercentOfPeak:F0}% |")));
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new { backend = "cpu", threads = n, micro_kernel = CpuGemm.BestPath.ToString(), fma_peak_gflops = peak, copy_gbs = copy, results },
                    new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            return 0;
        }));
        return command;
    }
}
