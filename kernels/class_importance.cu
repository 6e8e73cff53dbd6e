// class_importance.cu: ToMeCIS's class-importance score (SPEC-merging §3), the merge weight of its tokens:
// how much the class token attends to a token, times the length of the token's value averaged over heads.
//
// Variants:
//   class_importance_f32   One warp per row (b, t); lane l owns head dims d = l, l+32, ...:
//                            v̄[d] = (v[0][d] + v[1][d] + ... + v[H−1][d]) / H   heads added in order, unfused,
//                                                                            as the CPU (and key_mean_f32)
//                            score[b][t] = class_attention[b][t] · sqrt(Σ_d v̄[d]²)
//                          The sum of squares is a warp reduction (the CPU's is vectorized: both are
//                          fixed orders, not the same one; they agree to a few ulps).
//   class_importance_{f16,bf16}   the same on half qkv, all arithmetic in fp32.
//
// Layout:   qkv[B][T][3][H][D]: v[b][t][h][d] = qkv[(b·T + t)·3C + 2C + h·D + d] (C = H·D);
//           class_attention[B][T] (attention_class_row_f32) -> score[B][T].
// Launch:   grid = ceil(B·T / 8), block = 256 (8 warps, one row each).
// Limits:   any H, D; B·T < 2³¹.
// Params:   class_importance_f32(qkv, classAttention, rows, heads, headDim, score)
#include "common.cuh"

template <typename T>
TOME_DEVICE void class_importance_body(
    const T* __restrict__ qkv, const float* __restrict__ class_attention, int rows, int heads, int head_dim,
    float* __restrict__ score)
{
    const int row = blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;   // = b·T + t
    const int lane = threadIdx.x % WARP_SIZE;
    if (row >= rows) return;   // whole warps only
    const i64 C = (i64)heads * head_dim;
    const T* v = qkv + (i64)row * 3 * C + 2 * C;   // v[h][d] = v[h·D + d]
    float squares = 0.0f;
    for (int d = lane; d < head_dim; d += WARP_SIZE) {
        float sum = to_float(v[d]);
        for (int h = 1; h < heads; ++h) sum = __fadd_rn(sum, to_float(v[(i64)h * head_dim + d]));
        const float mean = __fdiv_rn(sum, (float)heads);
        squares = __fadd_rn(squares, __fmul_rn(mean, mean));
    }
    const float norm = sqrtf(warp_sum(squares));
    if (lane == 0) score[row] = __fmul_rn(class_attention[row], norm);
}

#define CLASS_IMPORTANCE_ENTRY(NAME, T)                                                                        \
    extern "C" __global__ void class_importance_##NAME(const T* __restrict__ qkv,                              \
        const float* __restrict__ class_attention, int rows, int heads, int head_dim, float* __restrict__ score) \
    {                                                                                                          \
        class_importance_body<T>(qkv, class_attention, rows, heads, head_dim, score);                          \
    }
CLASS_IMPORTANCE_ENTRY(f32, float)
CLASS_IMPORTANCE_ENTRY(f16, half_t)
CLASS_IMPORTANCE_ENTRY(bf16, bf16_t)
