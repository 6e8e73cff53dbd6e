using ToMe.Backends;
using ToMe.Backends.Cpu;
using ToMe.Backends.Cuda;
using ToMe.Backends.Cuda.Native;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cuda;

/// <summary>
/// The CPU reference and the CUDA backend side by side for op tests. Every GPU buffer is allocated with a tail of
/// <see cref="Pad"/> sentinel elements, and reading a result back asserts that the tail is untouched.
/// </summary>
internal sealed class BackendPair : IDisposable
{
    public const float Sentinel = -12345.5f;
    public const int IntSentinel = -7777;
    public const int Pad = 67;

    private readonly List<IDisposable> owned = [];

    private BackendPair(CudaBackend gpu) => Gpu = gpu;

    public CpuBackend Cpu { get; } = new(maxThreads: 4);
    public CudaBackend Gpu { get; }

    /// <summary>The CUDA backend on device 0, or a skip naming what is missing (a failure with TOME_REQUIRE_GPU=1).</summary>
    public static BackendPair Create() => new(CreateGpu());

    public static CudaBackend CreateGpu()
    {
        GpuRequirement.RequireDevice();
        NvrtcRequirement.Require();
        if (!CudaLibraries.TryLoad(CudaLibrary.Cublas, out _, out var tried))
            GpuRequirement.SkipOrFail("cuBLAS not found; tried:\n  " + string.Join("\n  ", tried));
        return new CudaBackend();
    }

    public (DeviceBuffer Cpu, DeviceBuffer Gpu) Floats(float[] values)
    {
        var cpu = Own(Cpu.AllocateFloat(values.Length));
        Cpu.Upload(values, cpu);
        var gpu = Own(Gpu.AllocateFloat(values.Length + Pad));
        Gpu.Upload([.. values, .. Enumerable.Repeat(Sentinel, Pad)], gpu);
        return (cpu, gpu);
    }

    public (DeviceBuffer Cpu, DeviceBuffer Gpu) Ints(int[] values)
    {
        var cpu = Own(Cpu.AllocateInt(values.Length));
        Cpu.Upload(values, cpu);
        var gpu = Own(Gpu.AllocateInt(values.Length + Pad));
        Gpu.Upload([.. values, .. Enumerable.Repeat(IntSentinel, Pad)], gpu);
        return (cpu, gpu);
    }

    /// <summary>An output pair: zeros on the CPU, sentinels everywhere on the GPU (so unwritten elements show).</summary>
    public (DeviceBuffer Cpu, DeviceBuffer Gpu) FloatOutput(int length) => Floats(Enumerable.Repeat(Sentinel, length).ToArray());

    public (DeviceBuffer Cpu, DeviceBuffer Gpu) IntOutput(int length) => Ints(Enumerable.Repeat(IntSentinel, length).ToArray());

    public ILinearWeights CpuLinear(float[] weight, int outFeatures, int inFeatures, float[] bias) =>
        Own(Cpu.PrepareLinear(weight, outFeatures, inFeatures, bias));

    public ILinearWeights GpuLinear(float[] weight, int outFeatures, int inFeatures, float[] bias) =>
        Own(Gpu.PrepareLinear(weight, outFeatures, inFeatures, bias));

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

    /// <summary>The first <paramref name="length"/> values of a GPU buffer, after checking the sentinel tail.</summary>
    public float[] ReadGpu(DeviceBuffer buffer, int length, string what)
    {
        var values = new float[length + Pad];
        Gpu.Download(buffer, values);
        for (int i = length; i < values.Length; i++)
            Assert.True(values[i].Equals(Sentinel), $"{what}: element {i} past the end ({length}) was overwritten with {values[i]:R}");
        return values[..length];
    }

    public int[] ReadGpuInts(DeviceBuffer buffer, int length, string what)
    {
        var values = new int[length + Pad];
        Gpu.Download(buffer, values);
        for (int i = length; i < values.Length; i++)
            Assert.True(values[i] == IntSentinel, $"{what}: element {i} past the end ({length}) was overwritten with {values[i]}");
        return values[..length];
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
        Gpu.Dispose();
        Cpu.Dispose();
    }
}
