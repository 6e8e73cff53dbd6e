// pool.cu: what reaches the classifier head: the prefix tokens (class, distillation), or the
// size-weighted mean of the patch tokens (global average pooling with ToMe's MAE semantics).
//
// Variants:
//   gather_prefix_f32        pooled[b][k][c] = x[b][k][c] for k < count (one thread per element, grid-stride).
//   weighted_mean_pool_f32   pooled[b][c] = Σ_{t=skip}^{T−1} size[b][t]·x[b][t][c] / Σ size[b][t], 0 when the
//                            sizes sum to 0. One thread per (b, c), tokens in ascending order, accumulated in
//                            double as the CPU does (each product is exact in double): bit-identical to it.
//
// Shapes:   x[B][T][C], size[B][T] -> gather: pooled[B][count·C]; mean: pooled[B][C].
// Launch:   gather_prefix_f32:      block = 256, grid = min(ceil(B·count·C / 256), 65535) (grid-stride).
//           weighted_mean_pool_f32: grid = (ceil(C / 128), B), block = 128.
// Limits:   B ≤ 65535 for the mean.
// Params:   gather_prefix_f32(x, batch, tokens, channels, count, pooled)
//           weighted_mean_pool_f32(x, size, batch, tokens, channels, skip, pooled)
#include "common.cuh"

extern "C" __global__ void gather_prefix_f32(const float* __restrict__ x, int batch, int tokens, int channels, int count,
    float* __restrict__ pooled)
{
    const i64 per_image = (i64)count * channels;
    const i64 n = (i64)batch * per_image;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const i64 b = i / per_image;   // pooled[b][k·C + c] = x[b][k][c]
        pooled[i] = x[b * tokens * channels + (i - b * per_image)];
    }
}

extern "C" __global__ void weighted_mean_pool_f32(const float* __restrict__ x, const float* __restrict__ size,
    int batch, int tokens, int channels, int skip, float* __restrict__ pooled)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (c >= channels || b >= batch) return;
    double acc = 0.0, total = 0.0;
    for (int t = skip; t < tokens; ++t) {
        const double w = size[(i64)b * tokens + t];
        total += w;
        acc += w * (double)x[((i64)b * tokens + t) * channels + c];
    }
    pooled[(i64)b * channels + c] = total > 0.0 ? (float)(acc / total) : 0.0f;
}
