namespace ToMe.Merging;

/// <summary>
/// The role of every token in a kth or random bipartite merge, the input of <c>IBackend.AssignToMostSimilar</c>:
/// a kept token's role is its index after the merge; a source merges into its most similar kept token; a dropped
/// token disappears. Both roles depend only on positions (and for random on the seed and image), never on the data,
/// so they are computed on the host.
/// </summary>
internal static class TokenRoles
{
    public const int Source = -1;
    public const int Dropped = -2;

    /// <summary>
    /// kth bipartite (ToMe's <c>kth_bipartite_soft_matching</c>): in each group of k consecutive tokens the first k − 1
    /// are sources and the last is kept as token t / k; the tail of T mod k tokens is dropped, as in the reference.
    /// </summary>
    public static void Kth(int tokens, int k, Span<int> role)
    {
        int full = tokens / k * k;
        for (int t = 0; t < tokens; t++)
            role[t] = t >= full ? Dropped : t % k == k - 1 ? t / k : Source;
    }

    /// <summary>
    /// Random bipartite: the r sources are the unprotected tokens with the smallest keys
    /// <c>Mix(imageKey ^ Mix(layer·2³² + t))</c> (all distinct: Mix is a bijection), i.e. a seeded random permutation per image
    /// and layer. The kept tokens (prefix tokens included) stay in their original order, so the class and distillation
    /// tokens stay first; they are neither sources nor destinations (protectedOutputs = prefixTokens).
    /// </summary>
    public static void Random(ulong imageKey, int layer, int tokens, int prefixTokens, int r, Span<int> role)
    {
        int free = tokens - prefixTokens;
        if (r < 0 || r >= Math.Max(1, free))
            throw new ArgumentOutOfRangeException(nameof(r), r, $"random merging of {free} unprotected tokens needs 0 <= r < {free}");
        var keys = new ulong[free];
        var index = new int[free];
        for (int i = 0; i < free; i++)
        {
            int t = prefixTokens + i;
            keys[i] = Mix(imageKey ^ Mix(((ulong)(uint)layer << 32) | (uint)t));
            index[i] = t;
        }
        // Mix is a bijection, so the keys of one image and layer are all distinct and the choice is unique.
        Array.Sort(keys, index);
        role.Clear();
        for (int i = 0; i < r; i++)
            role[index[i]] = Source;
        int next = 0;
        for (int t = 0; t < tokens; t++)
            if (role[t] != Source)
                role[t] = next++;
    }

    /// <summary>
    /// The random stream of one image: the seed mixed with every pixel's bits (FNV-1a over the float32 bit patterns,
    /// then SplitMix64's finalizer). Depending on the image rather than its position in the batch keeps the result of an
    /// image independent of the batch it arrives in; identical images draw identical sources.
    /// </summary>
    public static ulong ImageKey(long seed, ReadOnlySpan<float> image)
    {
        ulong h = 0xCBF29CE484222325UL ^ Mix((ulong)seed);
        foreach (float v in image)
            h = (h ^ BitConverter.SingleToUInt32Bits(v)) * 0x100000001B3UL;
        return Mix(h);
    }

    /// <summary>SplitMix64's output function: a bijective 64-bit mixer.</summary>
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
