// attention.cu: fused multi-head attention with ToMe's size bias (proportional attention), fp32.
//
// Variants:
//   attention_{f32,f16,bf16}_d{32,64,80,96,128}   (qkv and out in that type; tiles, softmax and sums in fp32)
//       out[b][n][h][:] = softmax_m(q·k_m · scale + log size[b][m]) · v, one pass over key tiles with
//       an online softmax (running max m, running sum l, rescaled accumulator; flash-attention style).
//       Block = (image b, head h, 16 queries): 4 warps × 4 queries per warp. Per tile of 32 keys
//       (K, V, log size staged in shared memory) lane j scores key j for each of its warp's queries,
//       the warp reduces max and sum with shuffles, and lane l accumulates output dims l, l+32, ...
//       broadcasting p_j by shuffle. size == null: no bias. size 0 -> log 0 = -inf -> weight exactly 0;
//       a tile whose keys are all -inf leaves the state untouched (the running max is guarded, so
//       no -inf − (-inf) = NaN), and a query whose keys are all masked outputs zeros (as the CPU).
//       class_stats != null: the block holding query 0 writes its final (max, sum) per (b, h), for
//       attention_class_row_f32.
//   attention_class_row_{f32,f16,bf16}, key_mean_{f32,f16,bf16}: qkv in that type, fp32 arithmetic and outputs.
//   attention_class_row_f32
//       class_attention[b][m] = (Σ_h exp(s_hm − max_h) / sum_h) / H, s_hm = q_0h·k_mh · scale + log size,
//       heads added in order h = 0..H−1 as the CPU does. One thread per (b, key m).
//   key_mean_f32
//       key_mean[b][n][d] = (Σ_h k[b][n][h][d]) / H, heads in order: bit-identical to the CPU. ToMe's metric.
//
// Layout:   qkv[B][T][3][H][D]: q[b][n][h][d] = qkv[(b·T + n)·3C + h·D + d], k at + C, v at + 2C (C = H·D);
//           out[B][T][C]; size[B][T]; key_mean[B][T][D]; class_stats[B][H][2]; class_attention[B][T].
// Launch:   attention_f32_dD:        grid = (ceil(T / 16), H, B), block = 128, static smem
//                                    (16·D + 32·(D+1) + 32·D + 32)·4 B (41.1 KiB at D = 128).
//           attention_class_row_f32: grid = (ceil(T / 128), B), block = 128.
//           key_mean_f32:            grid = min(ceil(B·T·D / 256), 65535), block = 256 (grid-stride).
// Limits:   any T ≥ 1 (tails are zero-padded; tested to 1025), H ≤ 65535, B ≤ 65535, D ∈ {32, 64, 80, 96, 128}
//           for the fused kernel (any D for the other two).
// Params:   attention_f32_dD(qkv, size, tokens, heads, scale, out, class_stats)
//           attention_class_row_f32(qkv, size, class_stats, tokens, heads, head_dim, scale, class_attention)
//           key_mean_f32(qkv, rows, heads, head_dim, key_mean)
//
// Later: an fp16/bf16 variant on tensor cores (mma.sync.m16n8k16, guarded by __CUDA_ARCH__ >= 800, with
// an fp32 online softmax), larger query tiles per block, and K/V double buffering with cp.async.
#include "common.cuh"

#define ATT_WARPS 4
#define ATT_QPW 4                        // queries per warp
#define ATT_BQ (ATT_WARPS * ATT_QPW)     // queries per block
#define ATT_BK WARP_SIZE                 // keys per tile: one per lane

// s = q·k · scale + bias, rounded like the CPU (product, then sum), never contracted into an FMA.
TOME_DEVICE float attention_logit(float dot, float scale, float bias) { return __fadd_rn(__fmul_rn(dot, scale), bias); }

// T: the storage type of qkv and out (float, half_t, bf16_t); shared tiles and all arithmetic are fp32.
template <typename T, int D>
TOME_DEVICE void attention_body(
    const T* __restrict__ qkv, const float* __restrict__ size, int tokens, int heads, float scale,
    T* __restrict__ out, float* __restrict__ class_stats)
{
    constexpr int DPL = (D + WARP_SIZE - 1) / WARP_SIZE;   // output dims per lane
    __shared__ float qs[ATT_BQ][D];
    __shared__ float ks[ATT_BK][D + 1];                    // +1: lane j reads ks[j][d] from bank (j + d) % 32
    __shared__ float vs[ATT_BK][D];
    __shared__ float log_size[ATT_BK];

    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * ATT_BQ;
    const int tid = threadIdx.x, warp = tid / WARP_SIZE, lane = tid % WARP_SIZE;
    const int C = heads * D;
    const i64 row_stride = 3LL * C;
    // q[n][d] = base[n·3C + d], k[n][d] = base[n·3C + C + d], v[n][d] = base[n·3C + 2C + d]
    const T* base = qkv + (i64)b * tokens * row_stride + h * D;

    for (int i = tid; i < ATT_BQ * D; i += blockDim.x) {
        const int qi = i / D, d = i % D, n = q0 + qi;
        qs[qi][d] = n < tokens ? to_float(base[n * row_stride + d]) : 0.0f;   // padded queries compute, never store
    }

    float m[ATT_QPW], l[ATT_QPW], acc[ATT_QPW][DPL];
#pragma unroll
    for (int qi = 0; qi < ATT_QPW; ++qi) {
        m[qi] = neg_infinity();
        l[qi] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; ++i) acc[qi][i] = 0.0f;
    }

    for (int k0 = 0; k0 < tokens; k0 += ATT_BK) {
        __syncthreads();   // the previous tile is consumed (and qs is written before the first)
        for (int i = tid; i < ATT_BK * D; i += blockDim.x) {
            const int j = i / D, d = i % D, key = k0 + j;
            // Zeros, not garbage, past the end: p = 0 there, and 0 · NaN would still poison the sum.
            ks[j][d] = key < tokens ? to_float(base[key * row_stride + C + d]) : 0.0f;
            vs[j][d] = key < tokens ? to_float(base[key * row_stride + 2 * C + d]) : 0.0f;
        }
        if (tid < ATT_BK) {
            const int key = k0 + tid;
            log_size[tid] = key >= tokens ? neg_infinity() : (size != nullptr ? logf(size[(i64)b * tokens + key]) : 0.0f);
        }
        __syncthreads();

#pragma unroll
        for (int qi = 0; qi < ATT_QPW; ++qi) {
            const float* q = qs[warp * ATT_QPW + qi];
            float dot = 0.0f;
#pragma unroll 16
            for (int d = 0; d < D; ++d) dot += q[d] * ks[lane][d];
            const float s = attention_logit(dot, scale, log_size[lane]);

            // Every value below is identical on all lanes (butterfly reductions), so branches are uniform.
            const float m_new = fmaxf(m[qi], warp_max(s));
            if (m_new == neg_infinity()) continue;   // all keys so far masked: keep (−inf, 0, 0)
            const float correction = expf(m[qi] - m_new);   // exp(−inf) = 0 on the first live tile
            const float p = expf(s - m_new);                // masked key: exp(−inf) = 0
            l[qi] = l[qi] * correction + warp_sum(p);
#pragma unroll
            for (int i = 0; i < DPL; ++i) acc[qi][i] *= correction;
            for (int j = 0; j < ATT_BK; ++j) {
                const float pj = __shfl_sync(FULL_MASK, p, j);
#pragma unroll
                for (int i = 0; i < DPL; ++i) {
                    const int d = lane + i * WARP_SIZE;
                    if (d < D) acc[qi][i] += pj * vs[j][d];
                }
            }
            m[qi] = m_new;
        }
    }

#pragma unroll
    for (int qi = 0; qi < ATT_QPW; ++qi) {
        const int n = q0 + warp * ATT_QPW + qi;
        if (n >= tokens) continue;
        // out[b][n][h][d]
        T* o = out + ((i64)b * tokens + n) * C + h * D;
#pragma unroll
        for (int i = 0; i < DPL; ++i) {
            const int d = lane + i * WARP_SIZE;
            if (d < D) o[d] = from_float<T>(l[qi] > 0.0f ? acc[qi][i] / l[qi] : 0.0f);
        }
        if (class_stats != nullptr && n == 0 && lane == 0) {
            class_stats[((i64)b * heads + h) * 2] = m[qi];
            class_stats[((i64)b * heads + h) * 2 + 1] = l[qi];
        }
    }
}

#define ATTENTION_ENTRY(NAME, T, D)                                                                           \
    extern "C" __global__ void __launch_bounds__(ATT_WARPS * WARP_SIZE) attention_##NAME##_d##D(             \
        const T* __restrict__ qkv, const float* __restrict__ size, int tokens, int heads, float scale,        \
        T* __restrict__ out, float* __restrict__ class_stats)                                                \
    {                                                                                                         \
        attention_body<T, D>(qkv, size, tokens, heads, scale, out, class_stats);                              \
    }
#define ATTENTION_ENTRIES(NAME, T) \
    ATTENTION_ENTRY(NAME, T, 32) ATTENTION_ENTRY(NAME, T, 64) ATTENTION_ENTRY(NAME, T, 80) ATTENTION_ENTRY(NAME, T, 96) ATTENTION_ENTRY(NAME, T, 128)

ATTENTION_ENTRIES(f32, float)
// Half storage on CUDA cores: the attention of GPUs without sm_80's mma.sync m16n8k16 (flash_attention.cu).
ATTENTION_ENTRIES(f16, half_t)
ATTENTION_ENTRIES(bf16, bf16_t)

template <typename T>
TOME_DEVICE void attention_class_row_body(
    const T* __restrict__ qkv, const float* __restrict__ size, const float* __restrict__ class_stats,
    int tokens, int heads, int head_dim, float scale,
    float* __restrict__ class_attention)
{
    const int key = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (key >= tokens) return;
    const int C = heads * head_dim;
    const T* q = qkv + (i64)b * tokens * 3 * C;                   // query 0 of image b
    const T* k = qkv + ((i64)b * tokens + key) * 3 * C + C;       // key `key` of image b
    const float bias = size != nullptr ? logf(size[(i64)b * tokens + key]) : 0.0f;
    float total = 0.0f;
    for (int h = 0; h < heads; ++h) {
        float dot = 0.0f;
        for (int d = 0; d < head_dim; ++d) dot += to_float(q[h * head_dim + d]) * to_float(k[h * head_dim + d]);
        const float s = attention_logit(dot, scale, bias);
        const float row_max = class_stats[((i64)b * heads + h) * 2];
        const float row_sum = class_stats[((i64)b * heads + h) * 2 + 1];
        total = __fadd_rn(total, row_sum > 0.0f ? expf(s - row_max) / row_sum : 0.0f);
    }
    class_attention[(i64)b * tokens + key] = total / (float)heads;
}

template <typename T>
TOME_DEVICE void key_mean_body(const T* __restrict__ qkv, int rows, int heads, int head_dim, float* __restrict__ key_mean)
{
    const i64 n = (i64)rows * head_dim;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    const i64 C = (i64)heads * head_dim;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const i64 row = i / head_dim;
        const int d = (int)(i - row * head_dim);
        const T* k = qkv + row * 3 * C + C + d;   // k[row][h][d] = k[h·D]
        float sum = to_float(k[0]);
        for (int h = 1; h < heads; ++h) sum = __fadd_rn(sum, to_float(k[(i64)h * head_dim]));
        key_mean[i] = sum / (float)heads;
    }
}

#define ATTENTION_SIDE_ENTRIES(NAME, T)                                                                        \
    extern "C" __global__ void attention_class_row_##NAME(const T* __restrict__ qkv, const float* __restrict__ size, \
        const float* __restrict__ class_stats, int tokens, int heads, int head_dim, float scale,                \
        float* __restrict__ class_attention)                                                                   \
    {                                                                                                          \
        attention_class_row_body<T>(qkv, size, class_stats, tokens, heads, head_dim, scale, class_attention);   \
    }                                                                                                          \
    extern "C" __global__ void key_mean_##NAME(const T* __restrict__ qkv, int rows, int heads, int head_dim,   \
                                               float* __restrict__ key_mean)                                   \
    {                                                                                                          \
        key_mean_body<T>(qkv, rows, heads, head_dim, key_mean);                                                \
    }
ATTENTION_SIDE_ENTRIES(f32, float)
ATTENTION_SIDE_ENTRIES(f16, half_t)
ATTENTION_SIDE_ENTRIES(bf16, bf16_t)
