namespace ToMe.Merging;

/// <summary>
/// Connected components of an undirected graph (ToMato's patch graph), labelled canonically: every node gets the
/// smallest node index of its component, so the answer depends only on the edge set, never on the order edges arrive.
/// </summary>
internal static class TokenComponents
{
    /// <summary>Labels nodes 0..n−1 given the edges <c>(a, b)</c> already added with <see cref="Union"/>.</summary>
    public static void Labels(Span<int> parent)
    {
        for (int i = 0; i < parent.Length; i++)
            parent[i] = Find(parent, i);
    }

    /// <summary>Resets <paramref name="parent"/> to n singletons.</summary>
    public static void Reset(Span<int> parent)
    {
        for (int i = 0; i < parent.Length; i++)
            parent[i] = i;
    }

    /// <summary>Joins the components of a and b; the smaller root becomes the parent, which keeps roots canonical.</summary>
    public static void Union(Span<int> parent, int a, int b)
    {
        int ra = Find(parent, a), rb = Find(parent, b);
        if (ra < rb)
            parent[rb] = ra;
        else if (rb < ra)
            parent[ra] = rb;
    }

    private static int Find(Span<int> parent, int i)
    {
        int root = i;
        while (parent[root] != root)
            root = parent[root];
        // Path compression: later finds are near-constant; roots are unchanged, so labels are too.
        while (parent[i] != root)
            (parent[i], i) = (root, parent[i]);
        return root;
    }

    /// <summary>
    /// The components of <paramref name="nodes"/> nodes joined by <paramref name="edges"/>, as component numbers
    /// 0, 1, … in order of each component's smallest node. Returns the component count.
    /// </summary>
    public static int Number(int nodes, IEnumerable<(int A, int B)> edges, Span<int> component)
    {
        var parent = new int[nodes];
        Reset(parent);
        foreach (var (a, b) in edges)
            Union(parent, a, b);
        return Number(parent, component);
    }

    /// <summary>Numbers the components of a union-find forest in order of their smallest node (the canonical root).</summary>
    public static int Number(Span<int> parent, Span<int> component)
    {
        Labels(parent);
        int count = 0;
        for (int i = 0; i < parent.Length; i++)
            component[i] = parent[i] == i ? count++ : component[parent[i]];
        return count;
    }
}
