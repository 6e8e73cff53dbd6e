using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using ToMe.Backends.Cuda.Native;

namespace ToMe.Backends.Cuda;

/// <summary>
/// The type a CUDA buffer of real numbers stores: fp32, or fp16/bf16 for the activations and weights of a half-precision
/// pass (docs/cuda.md lists which tensor is in which type). Kernels come in one entry point per storage type, named by
/// <see cref="FloatStorages.Suffix"/>.
/// </summary>
internal enum FloatStorage
{
    F32,
    F16,
    BF16,
}

internal static class FloatStorages
{
    /// <summary>The storage of tensors in a pass that runs in <paramref name="precision"/> (tf32 stores fp32).</summary>
    public static FloatStorage Of(Precision precision) => precision switch
    {
        Precision.BFloat16 => FloatStorage.BF16,
        Precision.Float16 => FloatStorage.F16,
        _ => FloatStorage.F32,
    };

    /// <summary>The kernel entry suffix: f32, f16, bf16.</summary>
    public static string Suffix(this FloatStorage storage) => storage switch
    {
        FloatStorage.F16 => "f16",
        FloatStorage.BF16 => "bf16",
        _ => "f32",
    };

    public static CudaDataType DataType(this FloatStorage storage) => storage switch
    {
        FloatStorage.F16 => CudaDataType.R16F,
        FloatStorage.BF16 => CudaDataType.R16BF,
        _ => CudaDataType.R32F,
    };

    /// <summary>Rounds to the nearest half (ties to even), as the kernels' cvt.rn does.</summary>
    public static void ToHalf(ReadOnlySpan<float> source, Span<ushort> destination, FloatStorage storage)
    {
        if (storage == FloatStorage.F16)
        {
            TensorPrimitives.ConvertToHalf(source, MemoryMarshal.Cast<ushort, Half>(destination));
            return;
        }
        for (int i = 0; i < source.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(source[i]);
            destination[i] = float.IsNaN(source[i])
                ? (ushort)((bits >> 16) | 0x40)                            // quiet NaN, sign kept
                : (ushort)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);  // ties to even; overflow rounds to ±inf
        }
    }

    public static void ToFloat(ReadOnlySpan<ushort> source, Span<float> destination, FloatStorage storage)
    {
        if (storage == FloatStorage.F16)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(source), destination);
            return;
        }
        for (int i = 0; i < source.Length; i++)
            destination[i] = BitConverter.UInt32BitsToSingle((uint)source[i] << 16);
    }
}
