using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ToMe.Backends.Cpu;

/// <summary>
/// A zero-initialised float buffer on the pinned object heap whose usable region starts on a 64-byte boundary,
/// so raw pointers stay valid for the buffer's lifetime and full-width vector loads never split cache lines.
/// </summary>
internal sealed unsafe class AlignedBuffer
{
    private const int AlignFloats = 16;
    private readonly float[] _storage;

    public AlignedBuffer(int length)
    {
        _storage = GC.AllocateArray<float>(length + AlignFloats, pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage));
        int misalign = (int)(((nuint)p & 63) / sizeof(float));
        Offset = misalign == 0 ? 0 : AlignFloats - misalign;
        Pointer = p + Offset;
        Length = length;
    }

    public float* Pointer { get; }

    public int Offset { get; }

    public int Length { get; }

    public Span<float> Span => _storage.AsSpan(Offset, Length);

    /// <summary>Returns <paramref name="slot"/> if it holds at least <paramref name="length"/> floats, else a larger replacement.</summary>
    [MethodImpl(Jit.Hot)]
    public static AlignedBuffer Ensure(ref AlignedBuffer? slot, int length)
    {
        if (slot == null || slot.Length < length)
        {
            slot = new AlignedBuffer(Math.Max(length, (slot?.Length ?? 0) * 2));
        }
        return slot;
    }
}
