using System.Globalization;
using System.Text.RegularExpressions;

namespace ToMe.Backends.Cuda.Kernels;

/// <summary>What ptxas reported for one entry function (from <c>--ptxas-options=-v</c> in the NVRTC log).</summary>
internal sealed record KernelResourceUsage(
    string Function,
    string Arch,
    int Registers,
    int SharedBytes,
    int StackFrameBytes,
    int SpillStoreBytes,
    int SpillLoadBytes,
    int ConstantBytes)
{
    public bool Spills => SpillStoreBytes > 0 || SpillLoadBytes > 0;
}

/// <summary>
/// Parses ptxas -v lines:
/// <code>
/// ptxas info    : Compiling entry function 'layer_norm_f32' for 'sm_86'
/// ptxas info    : Function properties for layer_norm_f32
///     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
/// ptxas info    : Used 18 registers, 4096 bytes smem, 380 bytes cmem[0]
/// </code>
/// </summary>
internal static partial class PtxasInfo
{
    [GeneratedRegex(@"Compiling entry function '(?<name>[^']+)' for '(?<arch>[^']+)'")]
    private static partial Regex EntryRegex();

    [GeneratedRegex(@"Function properties for (?<name>\S+)")]
    private static partial Regex PropertiesRegex();

    [GeneratedRegex(@"(?<stack>\d+) bytes stack frame, (?<stores>\d+) bytes spill stores, (?<loads>\d+) bytes spill loads")]
    private static partial Regex FrameRegex();

    [GeneratedRegex(@"Used (?<regs>\d+) registers")]
    private static partial Regex RegistersRegex();

    [GeneratedRegex(@"(?<bytes>\d+) bytes smem")]
    private static partial Regex SharedRegex();

    [GeneratedRegex(@"(?<bytes>\d+) bytes cmem\[0\]")]
    private static partial Regex ConstantRegex();

    /// <summary>One entry per compiled entry function, in log order.</summary>
    public static IReadOnlyList<KernelResourceUsage> Parse(string log)
    {
        var result = new List<KernelResourceUsage>();
        var frames = new Dictionary<string, (int Stack, int Stores, int Loads)>(StringComparer.Ordinal);
        string? current = null, currentArch = null, propertiesOf = null;
        int registers = 0, shared = 0, constant = 0;
        var open = false;

        void Flush()
        {
            if (open && current is not null)
                result.Add(new KernelResourceUsage(current, currentArch ?? "", registers, shared, 0, 0, 0, constant));
            open = false;
        }

        foreach (var raw in log.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (EntryRegex().Match(line) is { Success: true } entry)
            {
                Flush();
                current = entry.Groups["name"].Value;
                currentArch = entry.Groups["arch"].Value;
                registers = shared = constant = 0;
                open = true;
                continue;
            }
            if (PropertiesRegex().Match(line) is { Success: true } properties)
            {
                propertiesOf = properties.Groups["name"].Value;
                continue;
            }
            if (FrameRegex().Match(line) is { Success: true } frame && propertiesOf is not null)
            {
                frames[propertiesOf] = (Int(frame, "stack"), Int(frame, "stores"), Int(frame, "loads"));
                propertiesOf = null;
                continue;
            }
            if (open && RegistersRegex().Match(line) is { Success: true } used)
            {
                registers = Int(used, "regs");
                if (SharedRegex().Match(line) is { Success: true } smem)
                    shared = Int(smem, "bytes");
                if (ConstantRegex().Match(line) is { Success: true } cmem)
                    constant = Int(cmem, "bytes");
            }
        }
        Flush();

        // The frame line follows "Function properties for NAME", which may come before or after the
        // "Used ..." line depending on the ptxas version; join them by name.
        return result.Select(u => frames.TryGetValue(u.Function, out var f)
            ? u with { StackFrameBytes = f.Stack, SpillStoreBytes = f.Stores, SpillLoadBytes = f.Loads }
            : u).ToList();
    }

    private static int Int(Match match, string group) => int.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);
}
