namespace ToMe.Imaging;

/// <summary>
/// Preprocessed images of one exact length, kept for reuse up to a fixed count. Unlike the shared ArrayPool, which rounds
/// up to a power of two (1 MiB for a 600 KB image) and keeps per-core stacks that a collection may or may not trim, what
/// this holds is bounded and deterministic: at most <c>capacity</c> arrays after any burst. Thread-safe.
/// </summary>
internal sealed class TensorPool(int length, int capacity)
{
    private readonly Stack<float[]> free = new(capacity);

    public int Length => length;

    /// <summary>An array of <see cref="Length"/> floats with unspecified contents.</summary>
    public float[] Rent()
    {
        lock (free)
        {
            if (free.TryPop(out var tensor))
                return tensor;
        }
        return GC.AllocateUninitializedArray<float>(length);
    }

    public void Return(float[] tensor)
    {
        lock (free)
        {
            if (free.Count < capacity)
                free.Push(tensor);
        }
    }
}
