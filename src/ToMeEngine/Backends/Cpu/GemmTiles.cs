using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

/// <summary>
/// How a GEMM over packed weight panels splits into tiles of whole row blocks × groups of panels, shared by the float and
/// the int8 GEMM. Row blocks are evened out to whole micro-panels (197 rows in blocks of at most 192 are 108 + 89, not
/// 192 + 5) so the tiles of a short M are alike; N is split only as far as needed to give every thread a few tiles
/// (several per thread, so an uneven last tile or a busy core does not leave the others idle), into column blocks whose
/// panel counts differ by at most one: ViT-S's 36 qkv panels in 8 blocks are 4 or 5 panels each (18 per thread), not
/// seven blocks of 5 and one of 1 (20 panels for one thread, 16 for the other). Tiles are numbered row-block-major, so
/// concurrent tiles share the same rows of A in the cache. Where the caller asks for it (splitRows), a short M is split
/// over the threads instead, one row block each, every one reading all of the weights.
/// </summary>
internal readonly record struct GemmTiles(int M, int RowHeight, int RowBlocks, int Panels, int ColBlocks)
{
    public const int TasksPerThread = 3;

    /// <param name="m">rows of A and C</param>
    /// <param name="microRows">the kernel's rows per call; a row block is a multiple of it</param>
    /// <param name="maxRowBlock">the most rows a block holds</param>
    /// <param name="panels">weight panels (N / panel width, rounded up)</param>
    /// <param name="threads">threads the tiles are for (1: one tile per row block)</param>
    /// <param name="splitRows">where there are fewer row blocks than threads, give each thread rows rather than panels,
    /// if they split into one block per thread of at least two micro-panels with the last at least half as high as the
    /// others (ViT's 197 rows on 2 or 3 threads; not on 4, whose blocks of 60 would leave 17)</param>
    [MethodImpl(Jit.Hot)]
    public static GemmTiles For(int m, int microRows, int maxRowBlock, int panels, int threads, bool splitRows = false)
    {
        int rowBlocks = Math.Max(1, (m + maxRowBlock - 1) / maxRowBlock);
        int height = Height(m, rowBlocks, microRows);
        bool byRows = false;
        if (splitRows && threads > 1 && rowBlocks < threads && m >= 2 * threads * microRows)
        {
            int even = Height(m, threads, microRows);
            byRows = m - (threads - 1) * even >= even / 2;
            if (byRows)
                height = even;
        }
        rowBlocks = Math.Max(1, (m + height - 1) / height);
        int colBlocks = 1;
        while (threads > 1 && !byRows && colBlocks < panels && rowBlocks * colBlocks < TasksPerThread * threads)
            colBlocks = Math.Min(panels, colBlocks * 2);
        // As many column blocks as blocks of ⌈panels / colBlocks⌉ panels would need, then the panels spread evenly over them.
        int widest = Math.Max(1, (panels + colBlocks - 1) / colBlocks);
        return new GemmTiles(m, height, rowBlocks, panels, Math.Max(1, (panels + widest - 1) / widest));
    }

    // The height of blocks rows splits into: whole micro-panels, as even as that allows.
    private static int Height(int m, int blocks, int microRows) =>
        Math.Max(microRows, ((m + blocks - 1) / blocks + microRows - 1) / microRows * microRows);

    public int Count => RowBlocks * ColBlocks;

    /// <summary>Tile <paramref name="t"/>: rows [M0, M1) × panels [P0, P1).</summary>
    public (int M0, int M1, int P0, int P1) this[int t]
    {
        get
        {
            int rb = t / ColBlocks, cb = t % ColBlocks;
            int m0 = rb * RowHeight;
            return (m0, Math.Min(M, m0 + RowHeight), (int)((long)cb * Panels / ColBlocks), (int)((long)(cb + 1) * Panels / ColBlocks));
        }
    }
}
