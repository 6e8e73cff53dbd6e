namespace ToMe.Backends.Cuda.Graphs;

/// <summary>
/// One forward's recording: the fingerprint of every op and transfer in order (from the warm-up), the size of each
/// transfer that goes through pinned memory, and once captured, the graph and the pinned memory its copies read and write.
/// </summary>
internal sealed class ForwardTape : IDisposable
{
    private const long Alignment = 256;

    /// <summary>Every step (op, upload, download) the warm-up issued, as a fingerprint of its kind and arguments.</summary>
    public List<int> Steps { get; } = [];

    /// <summary>Bytes of each upload after the first op and of each download, in order.</summary>
    public List<long> Transfers { get; } = [];

    /// <summary>Where each transfer lives in <see cref="Staging"/>.</summary>
    public long[] Offsets { get; private set; } = [];

    public PinnedBuffer<byte>? Staging { get; private set; }

    public CudaGraph? Graph { get; set; }

    /// <summary>Why this forward runs uncaptured (capture or replay failed once), or null.</summary>
    public string? Failure { get; set; }

    /// <summary>Sizes the pinned memory for the recorded transfers, one 256-byte aligned region each.</summary>
    public void AllocateStaging(CudaContext context)
    {
        Offsets = new long[Transfers.Count];
        long total = 0;
        for (int i = 0; i < Transfers.Count; i++)
        {
            Offsets[i] = total;
            total += (Transfers[i] + Alignment - 1) / Alignment * Alignment;
        }
        Staging?.Dispose();
        Staging = PinnedBuffer<byte>.Allocate(context, checked((int)Math.Max(total, 1)));
    }

    /// <summary>The host address of transfer <paramref name="index"/>.</summary>
    public nint Slot(int index) => Staging!.Pointer + (nint)Offsets[index];

    public void Dispose()
    {
        Graph?.Dispose();
        Graph = null;
        Staging?.Dispose();
        Staging = null;
    }
}

/// <summary>
/// The recorded forwards, least recently used evicted past <see cref="Capacity"/>; each entry owns its graph and pinned memory.
/// </summary>
internal sealed class ForwardTapeCache(int capacity) : IDisposable
{
    private readonly Dictionary<ForwardKey, LinkedListNode<(ForwardKey Key, ForwardTape Tape)>> entries = [];
    private readonly LinkedList<(ForwardKey Key, ForwardTape Tape)> recency = new();

    public int Capacity { get; } = capacity;

    public int Count => entries.Count;

    public int Graphs => recency.Count(e => e.Tape.Graph is not null);

    public ForwardTape? Get(ForwardKey key)
    {
        if (!entries.TryGetValue(key, out var node))
            return null;
        recency.Remove(node);
        recency.AddFirst(node);
        return node.Value.Tape;
    }

    public ForwardTape Add(ForwardKey key)
    {
        Remove(key);
        while (entries.Count >= Capacity && recency.Last is { } oldest)
            Remove(oldest.Value.Key);
        var tape = new ForwardTape();
        entries[key] = recency.AddFirst((key, tape));
        return tape;
    }

    public void Remove(ForwardKey key)
    {
        if (!entries.Remove(key, out var node))
            return;
        recency.Remove(node);
        node.Value.Tape.Dispose();
    }

    /// <summary>Forgets every recording but <paramref name="keep"/>'s (their graphs may address freed memory).</summary>
    public void Clear(ForwardKey? keep = null)
    {
        foreach (var key in entries.Keys.Where(k => !k.Equals(keep)).ToList())
            Remove(key);
    }

    public void Dispose() => Clear();
}
