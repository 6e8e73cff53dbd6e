using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>Grid or block dimensions of a launch.</summary>
internal readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(uint x) => new(x);
    public static implicit operator Dim3(int x) => new(checked((uint)x));
}

/// <summary>A CUBIN loaded into a context (<c>cuModuleLoadData</c>).</summary>
internal sealed unsafe class CudaModule : CudaResource
{
    private readonly nint handle;
    private readonly Dictionary<string, CudaFunction> functions = new(StringComparer.Ordinal);

    public CudaModule(CudaContext context, ReadOnlySpan<byte> cubin, string name) : base(context)
    {
        Name = name;
        try
        {
            context.MakeCurrent();
            fixed (byte* image = cubin)
                Cu.Check(CuDriver.cuModuleLoadData(out handle, image), $"cuModuleLoadData({name})");
        }
        catch
        {
            AbandonConstruction();
            throw;
        }
    }

    /// <summary>The kernel file this module was compiled from.</summary>
    public string Name { get; }

    /// <summary>The <c>extern "C"</c> entry point <paramref name="entryPoint"/>.</summary>
    public CudaFunction Function(string entryPoint)
    {
        ThrowIfDisposed();
        lock (functions)
        {
            if (functions.TryGetValue(entryPoint, out var function))
                return function;
            Context.MakeCurrent();
            var utf8 = Encoding.UTF8.GetBytes(entryPoint + "\0");
            nint result;
            fixed (byte* p = utf8)
                Cu.Check(CuDriver.cuModuleGetFunction(out result, handle, p), $"cuModuleGetFunction({Name}: {entryPoint})");
            function = new CudaFunction(this, result, entryPoint);
            functions[entryPoint] = function;
            return function;
        }
    }

    protected override void Release() => CuDriver.cuModuleUnload(handle);
}

/// <summary>
/// Up to 16 kernel arguments of at most 8 bytes each (device pointers, ints, floats), in order.
/// <c>cuLaunchKernel</c> copies them at the call, so the struct can live on the caller's stack.
/// </summary>
internal struct KernelArgs
{
    public const int MaxCount = 16;
    private Slots slots;

    public int Count { get; private set; }

    /// <summary>Appends one argument; <typeparamref name="T"/> must match the kernel parameter's type and size.</summary>
    public KernelArgs Add<T>(T value) where T : unmanaged
    {
        if (Unsafe.SizeOf<T>() > 8)
            throw new ArgumentException($"kernel argument of {Unsafe.SizeOf<T>()} bytes; at most 8 supported");
        if (Count == MaxCount)
            throw new InvalidOperationException($"more than {MaxCount} kernel arguments");
        Unsafe.As<ulong, T>(ref slots[Count]) = value;
        Count++;
        return this;
    }

    public KernelArgs Add<T>(DeviceBuffer<T> buffer) where T : unmanaged => Add(buffer.Pointer);

    [UnscopedRef]
    internal ref ulong Slot(int index) => ref slots[index];

    [InlineArray(MaxCount)]
    private struct Slots
    {
        private ulong element;
    }
}

/// <summary>A kernel entry point in a loaded module.</summary>
internal sealed unsafe class CudaFunction
{
    private readonly CudaModule module;
    private readonly nint handle;

    internal CudaFunction(CudaModule module, nint handle, string name)
    {
        this.module = module;
        this.handle = handle;
        Name = name;
    }

    public string Name { get; }

    internal nint Handle => handle;

    /// <summary>Registers per thread, as the loaded binary reports.</summary>
    public int Registers => Attribute(CuFunctionAttribute.NumRegs);

    /// <summary>Static shared memory in bytes.</summary>
    public int StaticSharedBytes => Attribute(CuFunctionAttribute.SharedSizeBytes);

    /// <summary>The largest block this kernel can be launched with on the device.</summary>
    public int MaxThreadsPerBlock => Attribute(CuFunctionAttribute.MaxThreadsPerBlock);

    /// <summary>Allows launches with more than 48 KiB of dynamic shared memory.</summary>
    public void SetMaxDynamicSharedBytes(int bytes)
    {
        module.Context.MakeCurrent();
        Cu.Check(CuDriver.cuFuncSetAttribute(handle, CuFunctionAttribute.MaxDynamicSharedSizeBytes, bytes), $"cuFuncSetAttribute({Name}, MaxDynamicSharedSizeBytes, {bytes})");
    }

    /// <summary>Queues the kernel on <paramref name="stream"/>. With <c>TOME_CUDA_SYNC=1</c> the stream is synchronized and checked after every launch.</summary>
    public void Launch(CudaStream stream, Dim3 grid, Dim3 block, uint dynamicSharedBytes, KernelArgs args)
    {
        if (module.IsDisposed)
            throw new ObjectDisposedException(module.Name);
        module.Context.MakeCurrent();
        var pointers = stackalloc void*[Math.Max(1, args.Count)];
        for (var i = 0; i < args.Count; i++)
            pointers[i] = Unsafe.AsPointer(ref args.Slot(i));
        var result = CuDriver.cuLaunchKernel(handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, dynamicSharedBytes, stream.Handle, pointers, null);
        if (result != CuResult.Success)
            throw Cu.Error(result, $"cuLaunchKernel({module.Name}: {Name}, grid {grid}, block {block}, smem {dynamicSharedBytes})");
        KernelLaunchDebug.AfterLaunch(stream, $"{module.Name}: {Name}");
    }

    private int Attribute(CuFunctionAttribute attribute)
    {
        module.Context.MakeCurrent();
        Cu.Check(CuDriver.cuFuncGetAttribute(out var value, attribute, handle), $"cuFuncGetAttribute({Name}, {attribute})");
        return value;
    }
}

/// <summary>The <c>TOME_CUDA_SYNC=1</c> debug switch: synchronize after every launch so errors name their kernel.</summary>
internal static class KernelLaunchDebug
{
    /// <summary>Read once at start; tests and tools may set it directly.</summary>
    public static bool SynchronizeAfterLaunch { get; set; } = Environment.GetEnvironmentVariable("TOME_CUDA_SYNC") is "1" or "true";

    internal static void AfterLaunch(CudaStream stream, string what)
    {
        if (!SynchronizeAfterLaunch || stream.IsCapturing)
            return;
        var result = CuDriver.cuStreamSynchronize(stream.Handle);
        if (result != CuResult.Success)
            throw Cu.Error(result, $"cuStreamSynchronize after {what} (TOME_CUDA_SYNC=1)");
    }
}
