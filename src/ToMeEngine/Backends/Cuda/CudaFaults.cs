using System.Globalization;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>
/// The device had too little free memory for an allocation. The message names what was being allocated (a layer's
/// weights, the forward pass's workspace at a batch, an op's scratch), its size and the device's free and total memory;
/// <see cref="Exception.InnerException"/> is the driver's own error. Nothing half-allocated stays behind: the engine that
/// threw still runs smaller batches.
/// </summary>
public sealed class CudaOutOfMemoryException : CudaException
{
    internal CudaOutOfMemoryException(CudaException cause, string what, long requestedBytes, long freeBytes, long totalBytes)
        : base(Describe(what, requestedBytes, freeBytes, totalBytes, cause), cause)
    {
        What = what;
        RequestedBytes = requestedBytes;
        FreeBytes = freeBytes;
        TotalBytes = totalBytes;
    }

    /// <summary>What needed the memory, e.g. "the forward pass's workspace for vit_small_patch16_224 at batch 4096".</summary>
    public string What { get; }

    /// <summary>Bytes of the allocation that failed; −1 when a library (cuBLAS) failed to allocate without saying how much.</summary>
    public long RequestedBytes { get; }

    /// <summary>Free device memory when the allocation failed, in bytes; −1 when the driver could not say.</summary>
    public long FreeBytes { get; }

    /// <summary>The device's total memory, in bytes.</summary>
    public long TotalBytes { get; }

    /// <summary>The same failure restated for what it was part of (an allocation inside a model's weights, a workspace).</summary>
    internal CudaOutOfMemoryException For(string what) =>
        new((CudaException)InnerException!, what, RequestedBytes, FreeBytes, TotalBytes);

    private static string Describe(string what, long requested, long free, long total, CudaException cause) =>
        "out of GPU memory: " + (requested < 0 ? "" : $"{CudaFaults.Bytes(requested)} for ") + $"{what}; the device has " +
        (free < 0 ? "an unknown amount" : CudaFaults.Bytes(free)) + $" free of {CudaFaults.Bytes(total)}\n  ({cause.Message.Replace("\n", "\n  ", StringComparison.Ordinal)})";
}

/// <summary>
/// The device reported an error that leaves its context unusable (an illegal address, a device-side assert, a launch
/// failure): every later call in the context fails. The engine that saw it has released its device memory and cannot
/// run again; create a new engine. The device is usable again once every engine (and every other user of the device's
/// primary context in this process) has been disposed.
/// </summary>
public sealed class CudaContextLostException : CudaException
{
    internal CudaContextLostException(CudaException cause, string model)
        : base($"the GPU context was lost while running {model}: {cause.StatusName} ({cause.Message.Replace("\n", " ", StringComparison.Ordinal)}). " +
               "A GPU context does not recover from this error: this engine released its device memory and can no longer run; " +
               "create a new engine (the device resets once every engine using it is disposed)", cause)
    {
    }
}

/// <summary>Which CUDA errors lose the context, and byte counts for messages.</summary>
internal static class CudaFaults
{
    /// <summary>Marks an allocation made once per engine, whatever the batch (a library's workspace): no smaller batch avoids it.</summary>
    internal const string SetOnce = "set once";

    /// <summary>
    /// CUDA's "sticky" errors (cuda.h: the process must terminate, or reset the context, to use the device again):
    /// illegal address, launch timeout, assert, hardware stack error, illegal instruction, misaligned address,
    /// invalid address space, invalid PC, launch failed.
    /// </summary>
    public static bool LosesContext(int status) => status is 700 or 702 or 710 or (>= 714 and <= 719);

    /// <summary>
    /// True when <paramref name="error"/> came with (or after) an error that lost the current context. A library such as
    /// cuBLAS may report the lost context with its own status, so a failure from one is checked against the driver.
    /// </summary>
    public static bool ContextLost(CudaException error, out CudaException cause)
    {
        cause = error;
        if (error.Api == CudaApi.Driver && LosesContext(error.Status))
            return true;
        if (error.Api is not (CudaApi.Cublas or CudaApi.CublasLt))
            return false;
        var probe = CuDriver.cuCtxSynchronize();
        if (!LosesContext((int)probe))
            return false;
        cause = Cu.Error(probe, "cuCtxSynchronize() after " + error.Expression);
        return true;
    }

    /// <summary>
    /// <paramref name="cause"/>, a failed allocation of <paramref name="bytes"/> (−1: a library's own, of a size it does not
    /// say), restated with what it was for and the device's free and total memory.
    /// </summary>
    public static CudaOutOfMemoryException OutOfMemory(CudaException cause, CudaContext context, string what, long bytes)
    {
        long free = -1;
        if (CuDriver.cuMemGetInfo_v2(out var f, out _) == CuResult.Success)
            free = (long)f;
        return new CudaOutOfMemoryException(cause, what, bytes, free, context.Info.TotalMemoryBytes);
    }

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F2} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F1} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes:N0} bytes"),
    };
}
