using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ToMe.Backends;
using ToMe.Backends.Checks;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;

namespace ToMe.Cli.Commands;

/// <summary><c>tome kernels test</c>: every op of a backend against the CPU reference at awkward shapes, on the present device.</summary>
internal static class KernelsTestCommand
{
    public static Command Create()
    {
        var backend = new Option<string>("--backend") { Description = "cuda (the GPU's kernels), or cpu (all cores against the reference's 4 threads)", DefaultValueFactory = _ => "cuda" };
        var device = new Option<int>("--device") { Description = "CUDA device ordinal" };
        var filter = new Option<string?>("--filter") { Description = "only the checks whose name contains this text (e.g. attention, 'T=197')" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var command = new Command("test", "check every kernel against its CPU twin at awkward shapes on this machine's device; exits 1 on any failure")
        {
            backend, device, filter, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            using var under = Create(parse.GetValue(backend)!, parse.GetValue(device), out var description);
            // The precisions the device runs: the half checks on a GPU (bf16 from sm_80), fp32 only on the CPU.
            var checks = OpChecks.For(under).Where(c => parse.GetValue(filter) is not { } f || c.Name.Contains(f, StringComparison.OrdinalIgnoreCase)).ToList();
            if (checks.Count == 0)
                throw new ArgumentException($"--filter '{parse.GetValue(filter)}' matches no check (ops: {string.Join(", ", OpChecks.All.Select(c => c.Op).Distinct())})");
            bool asJson = parse.GetValue(json);
            var inv = CultureInfo.InvariantCulture;
            if (!asJson)
            {
                Console.WriteLine($"{description}: {checks.Count} op checks against the CPU reference");
                Console.WriteLine("| op | case | max abs error | max rel error | tolerance | ms | result |");
                Console.WriteLine("|---|---|---:|---:|---|---:|---|");
            }
            var results = new List<OpCheckResult>();
            foreach (var check in checks)
            {
                var r = OpChecks.Run(check, under);
                results.Add(r);
                if (!asJson)
                    Console.WriteLine(string.Create(inv,
                        $"| {r.Op} | {r.Case} | {r.MaxAbsError:G3} | {r.MaxRelError:G3} | {r.Tolerance} | {r.Milliseconds:F0} | {(r.Passed ? "pass" : "FAIL")} |"));
            }
            int failed = results.Count(r => !r.Passed);
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new { device = description, passed = results.Count - failed, failed, results },
                    new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            else
            {
                foreach (var r in results.Where(r => !r.Passed))
                    Console.WriteLine($"\nFAIL {r.Name}:\n  {r.Failure!.Replace("\n", "\n  ", StringComparison.Ordinal)}");
                Console.WriteLine($"\n{results.Count - failed}/{results.Count} passed{(failed > 0 ? $", {failed} FAILED" : "")}");
            }
            return failed == 0 ? 0 : 1;
        }));
        return command;
    }

    private static IBackend Create(string name, int ordinal, out string description)
    {
        switch (name)
        {
            case "cpu":
                var cpu = new CpuBackend();
                description = $"cpu, {cpu.MaxThreads} threads";
                return cpu;
            case "cuda":
                if (!CudaBackend.TryCreate(out var gpu, out var reason, ordinal))
                    throw new NotSupportedException(Backends.BackendFactory.NoDevice(ordinal, reason));
                description = $"cuda device {ordinal}: {gpu!.Device.Name} ({gpu.Device.Arch})";
                return gpu;
            default:
                throw new ArgumentException($"--backend '{name}' is not available (expected cuda or cpu)");
        }
    }
}
