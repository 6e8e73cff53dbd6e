using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace ToMe.Tests.Reliability;

/// <summary>What one fuzz run found: the first input that let an undocumented exception escape or ran too long.</summary>
public sealed record FuzzFinding(string Target, int Iteration, string Problem, byte[] Input, byte[] Minimized);

/// <summary>
/// A seeded mutation fuzzer. Each input is a seed file changed by a few of: bit flips, bytes and 16/32-bit fields
/// set to boundary values, length fields inflated, slices duplicated or deleted, truncation, and for text (JSON)
/// numbers swapped for hostile ones. A parser passes when every input either parses or throws one of the
/// documented exception types, each within the per-input limit. The same seed gives the same inputs.
/// </summary>
public sealed class Fuzzer(int seed)
{
    private readonly Random random = new(seed);

    private static readonly uint[] Interesting32 = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF];

    private static readonly string[] HostileNumbers =
        ["-1", "0", "1e400", "-1e400", "1e-400", "2147483648", "-2147483649", "9223372036854775807", "18446744073709551616", "1.5", "\"1\"", "null", "[]", "{}", "true", "1e300"];

    public byte[] Mutate(byte[] original, bool text)
    {
        var data = new List<byte>(original);
        int count = 1 + random.Next(random.Next(2) == 0 ? 2 : 6);
        for (int m = 0; m < count && data.Count > 0; m++)
        {
            int at = random.Next(data.Count);
            switch (random.Next(text ? 9 : 8))
            {
                case 0:
                case 1:
                    data[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 2:
                    data[at] = (byte)Interesting32[random.Next(Interesting32.Length)];
                    break;
                case 3:
                    SetField(data, at, Interesting32[random.Next(Interesting32.Length)]);
                    break;
                case 4:
                    InflateField(data, at);
                    break;
                case 5:
                    {
                        int length = Math.Min(data.Count - at, 1 + random.Next(64));
                        var slice = data.GetRange(at, length);
                        data.InsertRange(random.Next(data.Count + 1), slice);
                        break;
                    }
                case 6:
                    data.RemoveRange(at, Math.Min(data.Count - at, 1 + random.Next(64)));
                    break;
                case 7:
                    if (random.Next(4) == 0)
                        data.RemoveRange(at, data.Count - at);
                    else
                        data[at] = (byte)random.Next(256);
                    break;
                default:
                    ReplaceNumber(data, at);
                    break;
            }
        }
        return [.. data];
    }

    private void SetField(List<byte> data, int at, uint value)
    {
        int width = random.Next(2) == 0 ? 2 : 4;
        if (at + width > data.Count)
            return;
        Span<byte> bytes = stackalloc byte[4];
        if (random.Next(2) == 0)
            BinaryPrimitives.WriteUInt32BigEndian(bytes, width == 2 ? value << 16 : value);
        else
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        for (int i = 0; i < width; i++)
            data[at + i] = bytes[i];
    }

    /// <summary>Reads a 16/32-bit field either way round and makes it much larger: the classic forged length.</summary>
    private void InflateField(List<byte> data, int at)
    {
        if (at + 4 > data.Count)
            return;
        Span<byte> bytes = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        bool big = random.Next(2) == 0;
        uint value = big ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        value = random.Next(3) switch { 0 => value * (uint)(2 + random.Next(255)), 1 => value + (uint)random.Next(1 << 20), _ => value | 0x7FFF0000 };
        if (big)
            BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        else
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        for (int i = 0; i < 4; i++)
            data[at + i] = bytes[i];
    }

    private void ReplaceNumber(List<byte> data, int at)
    {
        int start = at;
        while (start < data.Count && !(data[start] is (byte)'-' or >= (byte)'0' and <= (byte)'9'))
            start++;
        int end = start;
        while (end < data.Count && data[end] is (byte)'-' or (byte)'.' or (byte)'e' or (byte)'E' or (byte)'+' or >= (byte)'0' and <= (byte)'9')
            end++;
        if (start >= data.Count)
            return;
        data.RemoveRange(start, end - start);
        data.InsertRange(start, Encoding.ASCII.GetBytes(HostileNumbers[random.Next(HostileNumbers.Length)]));
    }

    /// <summary>
    /// Runs <paramref name="parse"/> on mutations of the seeds until <paramref name="iterations"/> or <paramref name="budget"/>
    /// is spent; returns the first finding (minimized), or null. Each input runs on a worker so a hang is reported, not inherited.
    /// </summary>
    public FuzzFinding? Run(string target, IReadOnlyList<byte[]> seeds, bool text, Action<byte[]> parse, Type[] documented,
        int iterations, TimeSpan budget, TimeSpan perInput, Action<int>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < iterations && clock.Elapsed < budget; i++)
        {
            var input = Mutate(seeds[random.Next(seeds.Count)], text);
            var problem = Check(input, parse, documented, perInput);
            if (problem is not null)
                return new FuzzFinding(target, i, problem, input, Minimize(input, parse, documented, perInput, problem));
            progress?.Invoke(i);
        }
        return null;
    }

    /// <summary>Null when the input parses or fails as documented in time; otherwise what went wrong.</summary>
    /// <remarks>
    /// The suite runs in parallel on shared machines, where load can stall any input past the per-input limit for a
    /// moment. A really slow input is slow every time: it is reported only when it is over the limit on each of
    /// <see cref="SlowRuns"/> runs (the fastest is quoted). A hang never finishes, so the wait for one is far longer than any
    /// input takes even under load; that changes how long a hang takes to report, not whether it is.
    /// </remarks>
    public static string? Check(byte[] input, Action<byte[]> parse, Type[] documented, TimeSpan perInput)
    {
        var fastest = TimeSpan.MaxValue;
        for (int run = 0; run < SlowRuns; run++)
        {
            var (problem, elapsed) = CheckOnce(input, parse, documented, perInput * 30);
            if (problem is not null)
                return problem;
            if (elapsed <= perInput)
                return null;
            fastest = elapsed < fastest ? elapsed : fastest;
        }
        return $"took {fastest.TotalMilliseconds:F0} ms on each of {SlowRuns} runs (limit {perInput.TotalMilliseconds:F0})";
    }

    private const int SlowRuns = 3;

    private static (string? Problem, TimeSpan Elapsed) CheckOnce(byte[] input, Action<byte[]> parse, Type[] documented, TimeSpan hang)
    {
        Exception? escaped = null;
        var clock = Stopwatch.StartNew();
        var work = Task.Run(() =>
        {
            try
            {
                parse(input);
            }
            catch (Exception e) when (!documented.Contains(e.GetType()))
            {
                escaped = e;
            }
            catch (Exception)
            {
                // documented
            }
        });
        if (!work.Wait(hang))
            return ($"still running after {hang.TotalSeconds:F0} s (hang)", clock.Elapsed);
        if (escaped is not null)
            return ($"{escaped.GetType().Name}: {escaped.Message.Split('\n')[0]}", clock.Elapsed);
        return (null, clock.Elapsed);
    }

    /// <summary>Deletes slices while the same kind of problem reproduces (hangs are not minimized: too slow to repeat).</summary>
    public static byte[] Minimize(byte[] input, Action<byte[]> parse, Type[] documented, TimeSpan perInput, string problem, int maxAttempts = 600)
    {
        if (problem.Contains("hang") || problem.StartsWith("took", StringComparison.Ordinal))
            return input;
        string kind = problem.Split(':')[0];
        var current = input;
        int attempts = 0;
        for (int chunk = Math.Max(1, current.Length / 2); chunk >= 1 && attempts < maxAttempts; chunk /= 2)
        {
            for (int at = 0; at + chunk <= current.Length && attempts < maxAttempts;)
            {
                attempts++;
                byte[] candidate = [.. current.AsSpan(0, at), .. current.AsSpan(at + chunk)];
                var result = Check(candidate, parse, documented, perInput);
                if (result is not null && result.Split(':')[0] == kind)
                    current = candidate;
                else
                    at += chunk;
            }
        }
        return current;
    }
}
