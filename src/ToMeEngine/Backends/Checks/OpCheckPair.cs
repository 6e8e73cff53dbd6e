using System.Globalization;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;

namespace ToMe.Backends.Checks;

/// <summary>
/// The CPU reference and a backend under test side by side, for one op check, and the check's verdict. Every buffer of the
/// backend under test gets a tail of <see cref="Pad"/> sentinels, and reading a result back checks that the tail is
/// untouched. Comparisons record the largest errors and the first mismatches instead of throwing, so that one run can
/// report every check.
/// </summary>
internal sealed class OpCheckPair : IDisposable
{
    public const float Sentinel = -12345.5f;

    /// <summary>The sentinel of half buffers: exact in fp16 and bf16 (1232 = 77·2⁴), so it reads back unchanged.</summary>
    public const float HalfSentinel = -1232f;
    public const int IntSentinel = -7777;
    public const int Pad = 67;

    private readonly List<IDisposable> owned = [];
    private readonly List<string> failures = [];
    private readonly HashSet<DeviceBuffer> halfBuffers = [];
    private readonly bool ownsDevice;
    private readonly CultureInfo inv = CultureInfo.InvariantCulture;
    private double loosest = -1;

    /// <param name="device">The backend under test.</param>
    /// <param name="ownsDevice">Dispose <paramref name="device"/> with the pair.</param>
    public OpCheckPair(IBackend device, bool ownsDevice = false)
    {
        Device = device;
        this.ownsDevice = ownsDevice;
    }

    /// <summary>The reference: the CPU backend, on a few threads.</summary>
    public CpuBackend Cpu { get; } = new(maxThreads: 4);

    public IBackend Device { get; }

    /// <summary>Largest |actual − expected| over the float comparisons so far.</summary>
    public double MaxAbsError { get; private set; }

    /// <summary>Largest |actual − expected| / |expected| over the float comparisons so far (nonzero expected values).</summary>
    public double MaxRelError { get; private set; }

    /// <summary>The loosest tolerance compared against ("exact" when every comparison was bitwise).</summary>
    public string Tolerance { get; private set; } = "exact";

    public IReadOnlyList<string> Failures => failures;

    /// <param name="values">The device's values (then <see cref="Pad"/> sentinels).</param>
    /// <param name="cpuValues">What the reference gets instead (the values as the device's arithmetic sees them); default the same.</param>
    public (DeviceBuffer Cpu, DeviceBuffer Device) Floats(float[] values, float[]? cpuValues = null)
    {
        var cpu = Own(Cpu.AllocateFloat(values.Length));
        Cpu.Upload(cpuValues ?? values, cpu);
        var device = Own(Device.AllocateFloat(values.Length + Pad));
        Device.Upload([.. values, .. Enumerable.Repeat(Sentinel, Pad)], device);
        return (cpu, device);
    }

    /// <summary>
    /// Activations stored in <paramref name="precision"/>'s half type on the device (rounded as they are uploaded, then
    /// <see cref="HalfSentinel"/>s); the reference gets the same rounded values in fp32.
    /// </summary>
    public (DeviceBuffer Cpu, DeviceBuffer Device) Activations(float[] values, Precision precision)
    {
        var cpu = Own(Cpu.AllocateFloat(values.Length));
        Cpu.Upload(Rounded(values, precision), cpu);
        var device = Own(Device.AllocateActivation(values.Length + Pad, precision));
        Device.Upload([.. values, .. Enumerable.Repeat(HalfSentinel, Pad)], device);
        halfBuffers.Add(device);
        return (cpu, device);
    }

    /// <summary>A half output pair: sentinels everywhere.</summary>
    public (DeviceBuffer Cpu, DeviceBuffer Device) ActivationOutput(int length, Precision precision) =>
        Activations(Enumerable.Repeat(HalfSentinel, length).ToArray(), precision);

    /// <summary>Values rounded (to nearest even) to <paramref name="precision"/>'s storage type; fp32 and tf32 unchanged.</summary>
    public static float[] Rounded(float[] values, Precision precision)
    {
        var storage = FloatStorages.Of(precision);
        if (storage == FloatStorage.F32)
            return values;
        var halves = new ushort[values.Length];
        var rounded = new float[values.Length];
        FloatStorages.ToHalf(values, halves, storage);
        FloatStorages.ToFloat(halves, rounded, storage);
        return rounded;
    }

    public (DeviceBuffer Cpu, DeviceBuffer Device) Ints(int[] values)
    {
        var cpu = Own(Cpu.AllocateInt(values.Length));
        Cpu.Upload(values, cpu);
        var device = Own(Device.AllocateInt(values.Length + Pad));
        Device.Upload([.. values, .. Enumerable.Repeat(IntSentinel, Pad)], device);
        return (cpu, device);
    }

    /// <summary>An output pair: sentinels everywhere (so that unwritten elements show).</summary>
    public (DeviceBuffer Cpu, DeviceBuffer Device) FloatOutput(int length) => Floats(Enumerable.Repeat(Sentinel, length).ToArray());

    public (DeviceBuffer Cpu, DeviceBuffer Device) IntOutput(int length) => Ints(Enumerable.Repeat(IntSentinel, length).ToArray());

    /// <summary>A Linear layer; the device's in <paramref name="precision"/>, the reference's fp32 on the weights as rounded for it.</summary>
    public (ILinearWeights Cpu, ILinearWeights Device) Linear(float[] weight, int outFeatures, int inFeatures, float[] bias,
        Precision precision = Precision.Float32) =>
        (Own(Cpu.PrepareLinear(Rounded(weight, precision), outFeatures, inFeatures, bias)),
         Own(Device.PrepareLinear(weight, outFeatures, inFeatures, bias, precision)));

    public float[] ReadCpu(DeviceBuffer buffer, int length)
    {
        var values = new float[length];
        Cpu.Download(buffer, values);
        return values;
    }

    public int[] ReadCpuInts(DeviceBuffer buffer, int length)
    {
        var values = new int[length];
        Cpu.Download(buffer, values);
        return values;
    }

    /// <summary>The first <paramref name="length"/> values of a buffer under test, after checking its sentinel tail.</summary>
    public float[] ReadDevice(DeviceBuffer buffer, int length, string what)
    {
        var values = new float[length + Pad];
        Device.Download(buffer, values);
        float sentinel = halfBuffers.Contains(buffer) ? HalfSentinel : Sentinel;
        for (int i = length; i < values.Length; i++)
            if (!values[i].Equals(sentinel))
            {
                Fail($"{what}: element {i} past the end ({length}) was overwritten with {values[i].ToString("R", inv)}");
                break;
            }
        return values[..length];
    }

    public int[] ReadDeviceInts(DeviceBuffer buffer, int length, string what)
    {
        var values = new int[length + Pad];
        Device.Download(buffer, values);
        for (int i = length; i < values.Length; i++)
            if (values[i] != IntSentinel)
            {
                Fail($"{what}: element {i} past the end ({length}) was overwritten with {values[i]}");
                break;
            }
        return values[..length];
    }

    /// <summary>|actual − expected| ≤ atol + rtol·|expected| everywhere (NaN and ±∞ only where expected); records the errors.</summary>
    public void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float atol, float rtol, string what)
    {
        if (!SameLength(expected.Length, actual.Length, what))
            return;
        string tolerance = string.Create(inv, $"atol {atol:G3}, rtol {rtol:G3}");
        if (atol + rtol >= loosest)
        {
            loosest = atol + rtol;
            Tolerance = tolerance;
        }
        var mismatches = new List<string>();
        int count = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            bool bad;
            if (!float.IsFinite(e) || !float.IsFinite(a))
                bad = !e.Equals(a); // NaN and the infinities only where expected
            else
            {
                double error = Math.Abs((double)a - e);
                MaxAbsError = Math.Max(MaxAbsError, error);
                if (e != 0)
                    MaxRelError = Math.Max(MaxRelError, error / Math.Abs(e));
                bad = !(error <= atol + rtol * Math.Abs(e));
            }
            if (!bad)
                continue;
            count++;
            if (mismatches.Count < 8)
                mismatches.Add(string.Create(inv, $"[{i}] expected {e:R}, got {a:R}"));
        }
        if (count > 0)
            Fail($"{what}: {count} of {expected.Length} values differ ({tolerance}): {string.Join("; ", mismatches)}");
    }

    /// <summary>Bit-identical floats (the same operations in the same order).</summary>
    public void Identical(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        if (!SameLength(expected.Length, actual.Length, what))
            return;
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]))
                continue;
            if (!float.IsNaN(expected[i]) && !float.IsNaN(actual[i]))
            {
                double error = Math.Abs((double)actual[i] - expected[i]);
                MaxAbsError = Math.Max(MaxAbsError, error);
                if (expected[i] != 0)
                    MaxRelError = Math.Max(MaxRelError, error / Math.Abs(expected[i]));
            }
            Fail(string.Create(inv, $"{what}: [{i}] expected exactly {expected[i]:R}, got {actual[i]:R}"));
            return;
        }
    }

    public void Identical(ReadOnlySpan<int> expected, ReadOnlySpan<int> actual, string what)
    {
        if (!SameLength(expected.Length, actual.Length, what))
            return;
        int count = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
            {
                count++;
                if (first < 0)
                    first = i;
            }
        if (count > 0)
            Fail($"{what}: {count} of {expected.Length} differ, first [{first}] expected {expected[first]}, got {actual[first]}");
    }

    /// <summary>Records a failure unless <paramref name="condition"/> holds.</summary>
    public void Expect(bool condition, string message)
    {
        if (!condition)
            Fail(message);
    }

    public void Fail(string message) => failures.Add(message);

    private bool SameLength(int expected, int actual, string what)
    {
        if (expected == actual)
            return true;
        Fail($"{what}: {actual} values, expected {expected}");
        return false;
    }

    /// <summary>Uniform values in [−scale, scale) from a fixed seed.</summary>
    public static float[] Random(int length, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }

    private T Own<T>(T resource) where T : IDisposable
    {
        owned.Add(resource);
        return resource;
    }

    public void Dispose()
    {
        foreach (var resource in owned)
            resource.Dispose();
        owned.Clear();
        Cpu.Dispose();
        if (ownsDevice)
            Device.Dispose();
    }
}
