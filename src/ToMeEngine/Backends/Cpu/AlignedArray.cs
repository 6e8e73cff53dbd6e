using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ToMe.Backends.Cpu;

/// <summary>
/// The storage of a CPU backend buffer: a zero-initialised array on the pinned object heap whose first element sits on a
/// 64-byte boundary. Activation rows (C = 192, 384, 768 floats) and per-image slices (T × C) are whole multiples of 16
/// floats, so with an aligned start every 512-bit load and store of a row stays inside one cache line and the GEMM's
/// C-tile prefetch needs two lines per 32-float row, not three.
/// </summary>
/// <remarks>
/// Ops index it like the .NET array it replaces (indexer, <see cref="AsSpan(int, int)"/>, <c>fixed</c>). Spans and
/// <c>fixed</c> hold managed references into the array, so it stays alive while any op uses it; the pinned heap never
/// moves it, so raw pointers taken inside <c>fixed</c> stay valid. <see cref="Dispose"/> drops the array for the GC to
/// reclaim at once (the buffer's owner decides when), and leaves an empty view that fails every bounds check.
/// </remarks>
internal sealed unsafe class AlignedArray<T> : IDisposable where T : unmanaged
{
    internal const int Alignment = 64;
    private static readonly int Pad = Alignment / Unsafe.SizeOf<T>();

    private T[] storage;
    private int offset;

    public AlignedArray(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > Array.MaxLength - Pad)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"an aligned CPU buffer holds at most {Array.MaxLength - Pad} elements");
        storage = GC.AllocateArray<T>(length + Pad, pinned: true);
        nuint address = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(storage));
        int misaligned = (int)(address % Alignment) / Unsafe.SizeOf<T>();
        offset = misaligned == 0 ? 0 : Pad - misaligned;
        Length = length;
    }

    public int Length { get; private set; }

    public bool IsDisposed => Length == 0 && storage.Length == 0;

    /// <summary>The first element's address; valid while this array is reachable and not disposed.</summary>
    public unsafe T* Pointer => (T*)Unsafe.AsPointer(ref First);

    private ref T First => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(storage), offset);

    public ref T this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((uint)index >= (uint)Length)
                ThrowIndex(index);
            return ref Unsafe.Add(ref First, index);
        }
    }

    /// <summary>For <c>fixed (T* p = array)</c>: the first element (also for an empty array, whose padding is still there).</summary>
    public ref T GetPinnableReference() => ref First;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<T> AsSpan() => MemoryMarshal.CreateSpan(ref First, Length);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<T> AsSpan(int start) => AsSpan().Slice(start);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<T> AsSpan(int start, int length) => AsSpan().Slice(start, length);

    public static implicit operator Span<T>(AlignedArray<T> array) => array.AsSpan();

    public static implicit operator ReadOnlySpan<T>(AlignedArray<T> array) => array.AsSpan();

    /// <summary>
    /// Returns <paramref name="slot"/> if it holds at least <paramref name="length"/> elements, else a larger replacement
    /// (at least twice the old length, so a scratch slot that grows with its inputs is replaced a logarithmic number of times).
    /// </summary>
    [MethodImpl(Jit.Hot)]
    public static AlignedArray<T> Ensure(ref AlignedArray<T>? slot, int length)
    {
        if (slot == null || slot.Length < length)
            slot = new AlignedArray<T>(Math.Max(length, (int)Math.Min((long)(slot?.Length ?? 0) * 2, Array.MaxLength - Pad)));
        return slot;
    }

    public void Dispose()
    {
        storage = [];
        offset = 0;
        Length = 0;
    }

    private static void ThrowIndex(int index) => throw new IndexOutOfRangeException($"index {index} is outside the buffer");
}
