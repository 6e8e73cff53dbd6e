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
            var scores = new float[tokens];
            var logSize = new float[tokens];
            var acc = new float[headDim];
            for (int bh = start; bh < end; bh++)
            {
                int b = bh / heads, h = bh % heads;
                if (sizes is not null)
                    for (int m = 0; m < tokens; m++)
                        logSize[m] = MathF.Log(sizes[b * tokens + m]);
                int baseRow = b * tokens;
                for (int n = 0; n < tokens; n++)
                {
                    var q = input.AsSpan((baseRow + n) * stride + h * headDim, headDim);
                    for (int m = 0; m < tokens; m++)
                        scores[m] = TensorPrimitives.Dot(q, input.AsSpan((baseRow + m) * stride + c + h * headDim, headDim)) * scale;
                    CpuRowOps.SoftmaxWithBias(scores, sizes is null ? default : logSize);
                    if (n == 0 && classRows is not null)
                        scores.CopyTo(classRows.AsSpan(bh * tokens, tokens));
                    Array.Clear(acc);
                    for (int m = 0; m < tokens; m++)
                        if (scores[m] != 0f)
                            TensorPrimitives.MultiplyAdd(input.AsSpan((baseRow + m) * stride + 2 * c + h * headDim, headDim), scores[m], acc, acc);
                    acc.CopyTo(result.AsSpan((baseRow + n) * c + h * headDim, headDim));
                }
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
