using System.Numerics.Tensors;

namespace ToMe.Backends.Cpu;

internal sealed partial class CpuBackend
{
    public void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention)
    {
        var input = F(qkv);
        var sizes = size is null ? null : F(size);
        var result = F(output);
        int c = heads * headDim, stride = 3 * c;
        float scale = (float)(1.0 / Math.Sqrt(headDim));
        // Per (image, head) class-token rows, averaged over heads afterwards in a fixed order.
        var classRows = classAttention is null ? null : new float[batch * heads * tokens];

        For(batch * heads, 1, (start, end) =>
        {
            var scores = new float[tokens * tokens];
            var logSize = sizes is null ? null : new float[tokens];
            for (int bh = start; bh < end; bh++)
            {
                int b = bh / heads, h = bh % heads;
                if (logSize is not null)
                    for (int m = 0; m < tokens; m++)
                        logSize[m] = MathF.Log(sizes![b * tokens + m]);
                // q, k, v: [T, D] with row stride 3C inside qkv; scores: [T, T]; output rows: [T, D] with stride C
                var q = input.AsSpan((b * tokens * stride) + h * headDim);
                var k = input.AsSpan((b * tokens * stride) + c + h * headDim);
                var v = input.AsSpan((b * tokens * stride) + 2 * c + h * headDim);
                CpuGemm.MatMul(q, stride, k, stride, transposeB: true, scores, tokens, tokens, tokens, headDim, scale, accumulate: false);
                RowOps.SoftmaxRows(scores, tokens, tokens, tokens, logSize);
                if (classRows is not null)
                    scores.AsSpan(0, tokens).CopyTo(classRows.AsSpan(bh * tokens, tokens));
                CpuGemm.MatMul(scores, tokens, v, stride, transposeB: false, result.AsSpan(b * tokens * c + h * headDim), c,
                    tokens, headDim, tokens, 1f, accumulate: false);
            }
        });

        // ToMe's metric: the keys averaged over heads.
        var metric = F(keyMean);
        For(batch * tokens, 64, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                var dst = metric.AsSpan(row * headDim, headDim);
                input.AsSpan(row * stride + c, headDim).CopyTo(dst);
                for (int h = 1; h < heads; h++)
                    TensorPrimitives.Add(dst, input.AsSpan(row * stride + c + h * headDim, headDim), dst);
                TensorPrimitives.Divide(dst, heads, dst);
            }
        });

        if (classAttention is not null)
        {
            var cls = F(classAttention);
            for (int b = 0; b < batch; b++)
            {
                var dst = cls.AsSpan(b * tokens, tokens);
                classRows.AsSpan(b * heads * tokens, tokens).CopyTo(dst);
                for (int h = 1; h < heads; h++)
                    TensorPrimitives.Add(dst, classRows.AsSpan((b * heads + h) * tokens, tokens), dst);
                TensorPrimitives.Divide(dst, heads, dst);
            }
        }
    }
}
