using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

/// <summary>
/// Reusable scratch buffers of one op, a few at a time: every caller running the op at once (several images on their
/// own threads, or several requests) takes its own, and at most <c>capacity</c> are kept between calls.
/// </summary>
internal sealed class ScratchSlots<T>(int capacity) where T : class
{
    private readonly T?[] slots = new T?[Math.Max(1, capacity)];

    /// <summary>A kept buffer (of any size), or null when none is free.</summary>
    [MethodImpl(Jit.Hot)]
    public T? Take()
    {
        for (int i = 0; i < slots.Length; i++)
            if (Volatile.Read(ref slots[i]) is not null && Interlocked.Exchange(ref slots[i], null) is { } taken)
                return taken;
        return null;
    }

    /// <summary>Lets go of every kept buffer (a later <see cref="Take"/> finds none).</summary>
    public void Clear()
    {
        for (int i = 0; i < slots.Length; i++)
            Volatile.Write(ref slots[i], null);
    }

    /// <summary>Keeps <paramref name="buffer"/> for a later call, unless every slot is full.</summary>
    [MethodImpl(Jit.Hot)]
    public void Return(T buffer)
    {
        for (int i = 0; i < slots.Length; i++)
            if (Interlocked.CompareExchange(ref slots[i], buffer, null) is null)
                return;
    }
}
