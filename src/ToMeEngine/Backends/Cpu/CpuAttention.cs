using System.Runtime.CompilerServices;

namespace ToMe.Backends.Cpu;

internal sealed unsafe partial class CpuBackend
{
    // Query rows per task: two Kernel512 micro-panels. The task's strip of scores (rows × T) stays in L1/L2 from q·kᵀ
    // through the softmax to p·v; the T×T matrix is never formed.
    private const int QueryBlock = 2 * GemmKernels.Mr512;

    // Keys (transposed) and values of every (image, head), packed once per call and shared by that head's query blocks.
    private readonly ScratchSlots<AlignedBuffer> attentionPanels;

    [ThreadStatic] private static AlignedBuffer? t_scores;

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
        long keyPanels = CpuGemm.PackedPanelsLength(t, d), valuePanels = CpuGemm.PackedPanelsLength(d, t);
        long perHead = keyPanels + valuePanels;
        int pairs = batch * heads;
        int logLength = sizes is null ? 0 : batch * t;
        if (pairs * perHead + logLength > int.MaxValue / 2)
            throw new ArgumentException($"attention over [{batch}, {t}] tokens × {heads} heads is too large for one call");
        var panels = attentionPanels.Take();
        panels = AlignedBuffer.Ensure(ref panels, (int)(pairs * perHead + logLength));
        // Per (image, head) class-token rows, averaged over heads afterwards in a fixed order.
        var classRows = classAttention is null ? null : new float[batch * heads * t];
        int metricChunks = (batch * t + 63) / 64;
        var path = CpuGemm.BestPath;

        fixed (float* q0 = input, o0 = result)
        {
            float* qkvBase = q0, outBase = o0, panelBase = panels.Pointer, logSize = panels.Pointer + pairs * perHead;
            // Pass 1: pack every head's kᵀ and v; log(size) per token; ToMe's metric (the keys averaged over heads).
            Team.For(pairs + batch + metricChunks, [MethodImpl(Jit.Hot)] (task) =>
            {
                if (task < pairs)
                {
                    int b = task / heads, h = task % heads;
                    float* k = qkvBase + (long)b * t * stride + c + h * d;
                    float* dst = panelBase + task * perHead;
                    Packing.PackPanels(k, stride, transposed: true, t, d, dst);
                    Packing.PackPanels(k + c, stride, transposed: false, d, t, dst + keyPanels);
                }
                else if (task < pairs + batch)
                {
                    int b = task - pairs;
                    if (sizes is not null)
                        for (int m = 0; m < t; m++)
                            logSize[b * t + m] = MathF.Log(sizes[b * t + m]);
                }
                else
                {
                    int start = (task - pairs - batch) * 64, end = Math.Min(batch * t, start + 64);
                    for (int row = start; row < end; row++)
                    {
                        var dst = metric.AsSpan(row * d, d);
                        input.AsSpan(row * stride + c, d).CopyTo(dst);
                        for (int h = 1; h < heads; h++)
                            Simd.Add(dst, input.AsSpan(row * stride + c + h * d, d), dst);
                        Simd.Divide(dst, heads, dst);
                    }
                }
            });

            // Pass 2: per (image, head, block of query rows): scores = q·kᵀ·scale, softmax with the log-size bias, · v.
            int blocks = (t + QueryBlock - 1) / QueryBlock;
            int ldScores = (t + PackedWeight.PanelWidth - 1) / PackedWeight.PanelWidth * PackedWeight.PanelWidth;
            Team.For(pairs * blocks, [MethodImpl(Jit.Hot)] (task) =>
            {
                int bh = task / blocks, q = task % blocks * QueryBlock, rows = Math.Min(QueryBlock, t - q);
                int b = bh / heads, h = bh % heads;
                var strip = AlignedBuffer.Ensure(ref t_scores, QueryBlock * ldScores);
                float* scores = strip.Pointer;
                float* head = panelBase + bh * perHead;
                CpuGemm.MultiplyPacked(qkvBase + ((long)b * t + q) * stride + h * d, stride, head, scores, ldScores,
                    rows, t, d, scale, accumulate: false, path);
                var bias = sizes is null ? ReadOnlySpan<float>.Empty : new ReadOnlySpan<float>(logSize + b * t, t);
                var block = new Span<float>(scores, rows * ldScores);
                RowOps.SoftmaxRows(block, rows, t, ldScores, bias);
                if (classRows is not null && q == 0)
                    block[..t].CopyTo(classRows.AsSpan(bh * t, t));
                CpuGemm.MultiplyPacked(scores, ldScores, head + keyPanels, outBase + ((long)b * t + q) * c + h * d, c,
                    rows, d, t, 1f, accumulate: false, path);
                GC.KeepAlive(strip);
            });
        }
        GC.KeepAlive(panels);
        attentionPanels.Return(panels);

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
}
