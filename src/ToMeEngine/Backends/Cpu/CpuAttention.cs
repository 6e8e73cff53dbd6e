using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ToMe.Backends.Cpu;

internal sealed unsafe partial class CpuBackend
{
    // Query rows per step: a strip of scores (rows × T) stays in L1/L2 from q·kᵀ through the softmax to p·v; the T×T
    // matrix is never formed. Six Kernel512 micro-panels per strip reuse each key and value panel from L1 over six kernel
    // calls (two did over two): ~4% of the op at T = 197, about level from 48 to 200 rows. A thread's rows are cut into
    // strips of equal height up to this (see AttendImage).
    private const int QueryBlock = 6 * GemmKernels.Mr512;

    // Packing reads every qkv row once, mostly from memory or L3 (the qkv Linear wrote the whole batch's rows), and waited
    // on those misses: requesting each row's lines four rows ahead took ~40% off the packing pass (about 5% of the op at
    // ViT-Ti's shapes, batch 16); the hardware prefetcher alone kept too few lines in flight.
    private const int PrefetchRows = 4;

    // Tokens per packing step of an image: one key panel.
    private const int TokenChunk = PackedWeight.PanelWidth;

    [ThreadStatic] private static AlignedArray<float>? t_scores;

    // Per thread: the panels it attends over (every head's scaled queries, keys transposed and values of one image) and
    // log(size) of that image.
    [ThreadStatic] private static AlignedArray<float>? t_imagePanels;

    [MethodImpl(Jit.Hot)]
    public void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
    {
        var input = F(qkv);
        var sizes = size is null ? null : F(size);
        var result = F(output);
        var metric = F(keyMean);
        int c = heads * headDim, stride = 3 * c, t = tokens, d = headDim;
        float scale = (float)(1.0 / Math.Sqrt(d));
        // Scores rows and the log-size bias are padded to whole panels, which the padded softmax may overwrite and read.
        int ldScores = (t + PackedWeight.PanelWidth - 1) / PackedWeight.PanelWidth * PackedWeight.PanelWidth;
        long queries = ((long)t * d + 15) & ~15L;
        long keyPanels = CpuGemm.PackedPanelsLength(t, d), valuePanels = CpuGemm.PackedPanelsLength(d, t);
        long perHead = queries + keyPanels + valuePanels;
        long imageLength = heads * perHead + ldScores;
        if (imageLength > int.MaxValue / 2)
            throw new ArgumentException($"attention over {t} tokens × {heads} heads is too large for one call");
        // Where every thread has whole images to do (ViT batches), each thread packs an image into its own buffer, with
        // one pass over its rows of qkv, and attends over it while the packed panels are still in its L2. Otherwise
        // (one image, or a batch that does not split evenly) each thread takes a contiguous range of query rows, packs
        // the keys and values of their images itself and attends for its rows over every head. Panels packed by one
        // thread and read by another (every key and value read across cores) made the op 1.35–1.45× slower at batch 1 on
        // two Zen 5 cores (ViT-Ti, S, B, interleaved runs); packing an image's keys and values on both threads costs far
        // less. Ranges of heads instead of rows (each thread packing its heads) measured the same in the forward.
        // An op of one image among several running at once (the team is busy) runs on this thread alone.
        int threads = Team.Idle ? Team.Threads : 1;
        bool perImage = batch % threads == 0 || batch >= 4 * threads;
        // Per (image, head) class-token rows, averaged over heads afterwards in a fixed order.
        var classRows = classAttention is null ? null : new float[batch * heads * t];
        var path = CpuGemm.BestPath;
        // q·kᵀ's rows are rounded up to where its kernels store: whole micro-panels, or half ones on the 512-bit path.
        int mr = CpuGemm.MicroRows(path), rowStep = path == SimdPath.Vector512 ? GemmKernels.Mr512 / 2 : mr;

        fixed (float* q0 = input, o0 = result, m0 = metric)
        {
            float* qkvBase = q0, outBase = o0, metricBase = m0;
            if (perImage)
            {
                Team.For(batch, [MethodImpl(Jit.Hot)] (b) => AttendImage(b, 0, t));
            }
            else
            {
                // Work in units of one micro-panel of one image's query rows; each thread takes a contiguous range of them:
                // its images' keys and values, its rows' queries and metric, and attention for its rows over every head.
                int unitsPerImage = (t + mr - 1) / mr;
                long units = (long)batch * unitsPerImage;
                Team.For(threads, [MethodImpl(Jit.Hot)] (g) =>
                {
                    for (long u = units * g / threads, end = units * (g + 1) / threads; u < end;)
                    {
                        int b = (int)(u / unitsPerImage), first = (int)(u % unitsPerImage);
                        int last = (int)Math.Min(unitsPerImage, first + (end - u));
                        AttendImage(b, first * mr, Math.Min(t, last * mr));
                        u += last - first;
                    }
                });
            }

            // Query rows [r0, r1) of image b, every head: the image's panels packed into this thread's buffer (the queries
            // and the metric of those rows only), then attention one strip of rows at a time. The strips are of equal
            // height (whole micro-panels, at most QueryBlock): a thread's 96 rows as 72 + 24 took 6–10% longer than as
            // 48 + 48 (the attention op at batch 1, ViT-Ti/S/B on two threads), and merged token counts such as 145 no
            // longer leave a one-row strip.
            [MethodImpl(Jit.Hot)]
            void AttendImage(int b, int r0, int r1)
            {
                var buffer = AlignedArray<float>.Ensure(ref t_imagePanels, (int)imageLength);
                float* image = buffer.Pointer, log = image + heads * perHead;
                for (int j0 = 0; j0 < t; j0 += TokenChunk)
                    Pack(b, j0, Math.Min(t, j0 + TokenChunk), r0, r1, image, log);
                int strips = (r1 - r0 + QueryBlock - 1) / QueryBlock;
                int strip = ((r1 - r0 + strips - 1) / strips + mr - 1) / mr * mr;
                for (int h = 0; h < heads; h++)
                    for (int q = r0; q < r1; q += strip)
                        Attend(b, h, q, Math.Min(strip, r1 - q), image + h * perHead, log);
                GC.KeepAlive(buffer);
            }

            // Packing, per (image, chunk of tokens), walking the chunk's rows of qkv in memory order (each row once, rather
            // than a strided column of them per head): every head's keys and values into the image's panels (image: its
            // first head's); for the rows in [own0, own1), the scaled queries and ToMe's metric (the keys averaged over
            // heads) too; log(size) into log.
            [MethodImpl(Jit.Hot)]
            void Pack(int b, int j0, int j1, int own0, int own1, float* image, float* log)
            {
                for (int j = j0; j < j1; j++)
                {
                    float* row = qkvBase + ((long)b * t + j) * stride;
                    float* mean = j >= own0 && j < own1 ? metricBase + ((long)b * t + j) * d : null;
                    if (Sse.IsSupported && j + PrefetchRows < t)
                    {
                        byte* next = (byte*)(row + (long)PrefetchRows * stride);
                        for (int line = 0; line < stride * sizeof(float); line += 64)
                            Sse.Prefetch0(next + line);
                    }
                    if (Vector512.IsHardwareAccelerated && d % 16 == 0)
                        PackRow512(row, heads, d, scale, image, perHead, (long)j * d,
                            queries + keyPanels + (long)j * PackedWeight.PanelWidth, t, mean);
                    else
                        PackRow(row, heads, d, scale, image, perHead, j, queries, keyPanels, t, mean);
                }
                // The chunk's rows are in cache now; their keys fill one transposed panel per head.
                for (int h = 0; h < heads; h++)
                    Packing.PackPanels(qkvBase + ((long)b * t + j0) * stride + c + h * d, stride, transposed: true, j1 - j0, d,
                        image + h * perHead + queries + (long)j0 * d);
                if (sizes is not null && j1 == t)
                    LogSizes(b, log);
            }

            // log(size) of image b's tokens, zero up to whole panels (the padded softmax reads them).
            void LogSizes(int b, float* log)
            {
                for (int j = 0; j < t; j++)
                    log[j] = MathF.Log(sizes![b * t + j]);
                new Span<float>(log + t, ldScores - t).Clear();
            }

            // Attention of query rows [q, q + rows) (rows ≤ QueryBlock) of one (image, head) over its packed panels
            // (head): scores = (q·scale)·kᵀ, softmax with the log-size bias, · v.
            [MethodImpl(Jit.Hot)]
            void Attend(int b, int h, int q, int rows, float* head, float* log)
            {
                int bh = b * heads + h;
                var strip = AlignedArray<float>.Ensure(ref t_scores, QueryBlock * ldScores);
                float* scores = strip.Pointer;
                // The queries are scaled already, so the kernels read them in place (alpha 1): the same products as
                // scaling them while packing. The strip has room for whole micro-panels and 16-column vectors, so a short
                // last micro-panel (197 = 2·72 + 4·12 + 5 rows) and the last key panel (5 live columns) are computed whole,
                // or as half a micro-panel where at most six rows are left, and stored in place rather than through a
                // packed micro-panel and a scratch tile copied out: the extra rows read the next rows of the head's panels
                // (the keys, in bounds), and the extra rows and columns of scores are never read. p·v reads the strip's
                // rows in place the same way (the strip has whole micro-panels), its short last micro-panel included,
                // through the scratch tile: the output rows past the strip belong to other tokens.
                // A last key panel of at most eight keys (T = 197, 577, 1025) takes the two-rows-per-vector kernel, a row
                // pair per vector, twelve rows a call: the strip (72 rows) and the panels past the queries have the room.
                int qkRows = (rows + rowStep - 1) / rowStep * rowStep;
                int fullKeys = t / PackedWeight.PanelWidth * PackedWeight.PanelWidth;
                bool pairs = path == SimdPath.Vector512 && Avx512DQ.IsSupported && d % 16 == 0
                    && t - fullKeys <= PackedWeight.PanelWidth / 4;
                int keys = pairs ? fullKeys : (t + 15) & ~15;
                if (keys > 0)
                    CpuGemm.MultiplyPacked(head + (long)q * d, d, head + queries, scores, ldScores, qkRows, keys, d, 1f,
                        accumulate: false, path, paddedA: true);
                if (pairs && keys < t)
                {
                    for (int i = 0; i < qkRows; i += GemmKernels.Mr512)
                        GemmKernels.Kernel512RowPairs(d, head + (long)(q + i) * d, d, head + queries + (long)fullKeys * d,
                            scores + (long)i * ldScores + fullKeys, ldScores);
                }
                RowOps.SoftmaxPaddedRows(scores, rows, t, ldScores, sizes is null ? null : log);
                if (classRows is not null && q == 0)
                    new ReadOnlySpan<float>(scores, t).CopyTo(classRows.AsSpan(bh * t, t));
                CpuGemm.MultiplyPacked(scores, ldScores, head + queries + keyPanels, outBase + ((long)b * t + q) * c + h * d, c,
                    rows, d, t, 1f, accumulate: false, path, paddedA: true);
                GC.KeepAlive(strip);
            }
        }
        if (classAttention is not null)
        {
            var cls = F(classAttention);
            for (int b = 0; b < batch; b++)
            {
                var dst = cls.AsSpan(b * t, t);
                classRows.AsSpan(b * heads * t, t).CopyTo(dst);
                for (int h = 1; h < heads; h++)
                    Simd.Add(dst, classRows.AsSpan((b * heads + h) * t, t), dst);
                Simd.Divide(dst, heads, dst);
            }
        }
    }

    // One token's row of qkv: each head's query scaled into its [t, d] block (at query), its value into row j of the
    // value panels (at value: Packing.PackPanels' layout for a [t, d] operand, panel p holding columns [32p, 32p + 32) of
    // every token, padding columns zero); the key averaged over heads into mean (summed in head order, then divided).
    // mean null: a row whose queries and metric another thread writes; its values only.
    [MethodImpl(Jit.Hot)]
    private static void PackRow(float* row, int heads, int d, float scale, float* head, long perHead, int j, long queries,
        long keyPanels, int t, float* mean)
    {
        const int nr = PackedWeight.PanelWidth;
        int c = heads * d;
        for (int h = 0; h < heads; h++, head += perHead)
        {
            if (mean != null)
                Simd.Multiply(new ReadOnlySpan<float>(row + h * d, d), scale, new Span<float>(head + (long)j * d, d));
            float* dst = head + queries + keyPanels + (long)j * nr;
            for (int e0 = 0; e0 < d; e0 += nr, dst += (long)nr * t)
            {
                int cols = Math.Min(nr, d - e0);
                new ReadOnlySpan<float>(row + 2 * c + h * d + e0, cols).CopyTo(new Span<float>(dst, nr));
                new Span<float>(dst + cols, nr - cols).Clear();
            }
        }
        if (mean != null)
            KeyMean(row + c, heads, d, mean);
    }

    // One token's keys (heads × d from key) averaged over heads into mean: summed in head order, then divided.
    [MethodImpl(Jit.Hot)]
    private static void KeyMean(float* key, int heads, int d, float* mean)
    {
        if (Vector512.IsHardwareAccelerated && d % 16 == 0)
        {
            var n = Vector512.Create((float)heads);
            for (int e = 0; e < d; e += 16)
            {
                var sum = Vector512.Load(key + e);
                for (int h = 1; h < heads; h++)
                    sum += Vector512.Load(key + h * d + e);
                (sum / n).Store(mean + e);
            }
            return;
        }
        var total = new Span<float>(mean, d);
        new ReadOnlySpan<float>(key, d).CopyTo(total);
        for (int h = 1; h < heads; h++)
            Simd.Add(total, new ReadOnlySpan<float>(key + h * d, d), total);
        Simd.Divide(total, heads, total);
    }

    // PackRow for d a multiple of 16 with 512-bit vectors: the same values, without a call per span. query and value are
    // offsets from each head's block.
    [MethodImpl(Jit.Hot)]
    private static void PackRow512(float* row, int heads, int d, float scale, float* head, long perHead, long query,
        long value, int t, float* mean)
    {
        const int nr = PackedWeight.PanelWidth;
        int c = heads * d;
        var s = Vector512.Create(scale);
        for (int h = 0; h < heads; h++, head += perHead)
        {
            float* q = row + h * d, v = row + 2 * c + h * d, qd = head + query, vd = head + value;
            for (int e = 0; e < d; e += 16)
            {
                if (mean != null)
                    (Vector512.Load(q + e) * s).Store(qd + e);
                Vector512.Load(v + e).Store(vd + (long)(e / nr) * nr * t + e % nr);
            }
            if (d % nr != 0)
                Vector512<float>.Zero.Store(vd + (long)(d / nr) * nr * t + nr / 2);
        }
        if (mean != null)
            KeyMean(row + c, heads, d, mean);
    }
}
