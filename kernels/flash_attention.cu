// flash_attention.cu: fused multi-head attention with ToMe's size bias on tensor cores, fp16 or bf16 in and out,
// fp32 softmax and accumulation (FlashAttention-2's scheme).
//
// Variants:
//   flash_attention_{f16,bf16}_d64
//       out[b][n][h][:] = softmax_m(q·k_m · scale + log size[b][m]) · v. Block = (image b, head h, 64 queries):
//       4 warps, each owning 16 query rows. Q's tile stays in registers as mma A fragments; K/V tiles of 64 keys
//       are double-buffered in shared memory by cp.async (tile j + 1 loads while tile j is computed). Per tile:
//       S = Q·Kᵀ by mma.sync m16n8k16 (ldmatrix of K rows), the logits scaled and biased by log size before the
//       running max, an online softmax in fp32 registers (a row's max and sum reduced across the 4 lanes that
//       hold it), P rounded to the input type and reused in registers as the A fragments of O += P·V (ldmatrix
//       .trans of V rows). size == null: no bias. size 0 -> log 0 = -inf -> weight exactly 0; a row whose keys
//       are all masked so far keeps a zero state (no -inf − (-inf)), and one with every key masked writes zeros.
//       Keys and queries past T are zero-filled in shared memory (never read from global) and masked to -inf;
//       rows past T are never written.
//
// Layout:   qkv[B][T][3][H][D] (q at h·D, k at C + h·D, v at 2C + h·D of a token's row, C = H·D), out[B][T][C],
//           size[B][T] fp32. qkv and out 16-byte aligned (every row's offset is a multiple of D = 64 elements).
// Launch:   grid = (ceil(T / 64), H, B), block = 128, static smem (64 + 2·2·64)·72·2 + 2·64·4 B = 45.5 KiB.
// Limits:   sm_80 and newer (mma.sync m16n8k16, cp.async); D = 64; any T ≥ 1 (tested to 1025); H, B ≤ 65535.
//           On sm_70/75 the entry points exist (every kernel file compiles for every architecture) but stop with
//           a trap: those GPUs run attention.cu's attention_{f16,bf16}_dD on CUDA cores (any D it supports).
// Params:   flash_attention_T_d64(qkv, size, tokens, heads, scale, out)
#include "tensor_core.cuh"

#define FA_WARPS 4
#define FA_THREADS (FA_WARPS * WARP_SIZE)
#define FA_BQ (FA_WARPS * 16)   // queries per block: 16 rows per warp, the M of m16n8k16
#define FA_BK 64                // keys per tile
#define FA_PAD 8                // row padding in elements: 8 ldmatrix rows then start in 8 different 16-byte bank groups

#if __CUDA_ARCH__ >= 800
// Rows [first, first + 64) of one part (0 q, 1 k, 2 v) of head h into a padded tile: cp.async for rows below
// `tokens`, zeros for the rest.
template <typename T, int D>
TOME_DEVICE void flash_load_tile(T (*tile)[D + FA_PAD], const T* base, i64 row_stride, int part_offset, int first, int tokens)
{
    constexpr int chunks = D / 8;   // 16-byte chunks per row
    for (int c = threadIdx.x; c < FA_BK * chunks; c += FA_THREADS) {
        const int r = c / chunks, col = (c % chunks) * 8, n = first + r;
        if (n < tokens) {
            cp_async_16(&tile[r][col], base + (i64)n * row_stride + part_offset + col);
        } else {
            u32* zero = reinterpret_cast<u32*>(&tile[r][col]);
            zero[0] = zero[1] = zero[2] = zero[3] = 0;
        }
    }
}

// log size of keys [first, first + 64); -inf past T (and for size 0).
TOME_DEVICE void flash_load_bias(float* bias, const float* size_row, int first, int tokens)
{
    const int j = threadIdx.x;
    if (j < FA_BK) {
        const int n = first + j;
        bias[j] = n >= tokens ? neg_infinity() : size_row != nullptr ? logf(size_row[n]) : 0.0f;
    }
}
#endif

template <typename T, int D>
TOME_DEVICE void flash_attention_body(const T* __restrict__ qkv, const float* __restrict__ size, int tokens, int heads, float scale,
                                      T* __restrict__ out)
{
#if __CUDA_ARCH__ >= 800
    static_assert(D % 16 == 0 && FA_BK % 16 == 0, "tiles are whole mma shapes");
    constexpr int LD = D + FA_PAD;
    __align__(16) __shared__ T qs[FA_BQ][LD];
    __align__(16) __shared__ T ks[2][FA_BK][LD];
    __align__(16) __shared__ T vs[2][FA_BK][LD];
    __shared__ float bias[2][FA_BK];

    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * FA_BQ;
    const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE, g = lane / 4, t = lane % 4;
    const int C = heads * D;
    const i64 row_stride = 3LL * C;
    const T* base = qkv + (i64)b * tokens * row_stride + h * D;
    const float* size_row = size != nullptr ? size + (i64)b * tokens : nullptr;

    flash_load_tile<T, D>(qs, base, row_stride, 0, q0, tokens);
    flash_load_tile<T, D>(ks[0], base, row_stride, C, 0, tokens);
    flash_load_tile<T, D>(vs[0], base, row_stride, 2 * C, 0, tokens);
    flash_load_bias(bias[0], size_row, 0, tokens);
    cp_async_commit();

    u32 qf[D / 16][4];              // this warp's 16 query rows as A fragments, one per 16 dims
    float o[D / 8][4] = {};         // O: 16 rows × D, fragment d-block by d-block
    float m[2] = {neg_infinity(), neg_infinity()};   // running max of rows g and g + 8
    float l[2] = {0.0f, 0.0f};      // this lane's part of their running sums (the quad's total at the end)

    const int tiles = (tokens + FA_BK - 1) / FA_BK;
    for (int j = 0; j < tiles; ++j) {
        const int buf = j & 1;
        if (j + 1 < tiles) {
            flash_load_tile<T, D>(ks[buf ^ 1], base, row_stride, C, (j + 1) * FA_BK, tokens);
            flash_load_tile<T, D>(vs[buf ^ 1], base, row_stride, 2 * C, (j + 1) * FA_BK, tokens);
            flash_load_bias(bias[buf ^ 1], size_row, (j + 1) * FA_BK, tokens);
        }
        cp_async_commit();
        cp_async_wait<1>();   // everything but tile j + 1 has landed
        __syncthreads();
        if (j == 0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk)
                ldmatrix_x4(qf[kk], &qs[warp * 16 + lane % 16][kk * 16 + (lane / 16) * 8]);
        }

        // S = Q·Kᵀ: B[k = dim][n = key] = K[key][dim], so K's rows load untransposed; one x4 covers 16 keys × 16 dims.
        float s[FA_BK / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
            for (int nb = 0; nb < FA_BK / 16; ++nb) {
                u32 kf[4];
                ldmatrix_x4(kf, &ks[buf][nb * 16 + (lane / 16) * 8 + lane % 8][kk * 16 + ((lane / 8) % 2) * 8]);
                const u32 lo[2] = {kf[0], kf[1]}, hi[2] = {kf[2], kf[3]};
                mma_m16n8k16<T>(s[2 * nb], qf[kk], lo);
                mma_m16n8k16<T>(s[2 * nb + 1], qf[kk], hi);
            }
        }

        // Online softmax in fp32: element i of block nb is row g + 8·(i / 2), key nb·8 + 2t + i % 2.
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int nb = 0; nb < FA_BK / 8; ++nb) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                s[nb][i] = s[nb][i] * scale + bias[buf][nb * 8 + 2 * t + (i & 1)];
                mx[i >> 1] = fmaxf(mx[i >> 1], s[nb][i]);
            }
        }
        float alpha[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(FULL_MASK, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(FULL_MASK, mx[r], 2));
            const bool empty = mx[r] == neg_infinity();   // every key so far masked: keep the zero state
            alpha[r] = empty ? 1.0f : expf(m[r] - mx[r]);
            m[r] = mx[r];
            l[r] *= alpha[r];
        }
#pragma unroll
        for (int nb = 0; nb < FA_BK / 8; ++nb) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int r = i >> 1;
                s[nb][i] = m[r] == neg_infinity() ? 0.0f : expf(s[nb][i] - m[r]);
                l[r] += s[nb][i];
            }
        }
#pragma unroll
        for (int db = 0; db < D / 8; ++db)
#pragma unroll
            for (int i = 0; i < 4; ++i)
                o[db][i] *= alpha[i >> 1];

        // O += P·V: P's accumulator fragments are its A fragments (two key blocks of 8 per 16-key step); B[k = key][n = dim]
        // = V[key][dim] wants pairs of keys, so V's rows load transposed.
#pragma unroll
        for (int kc = 0; kc < FA_BK / 16; ++kc) {
            const u32 pa[4] = {pack2_float<T>(s[2 * kc][0], s[2 * kc][1]), pack2_float<T>(s[2 * kc][2], s[2 * kc][3]),
                               pack2_float<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]), pack2_float<T>(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
            for (int db = 0; db < D / 16; ++db) {
                u32 vf[4];
                ldmatrix_x4_trans(vf, &vs[buf][kc * 16 + lane % 8 + ((lane / 8) % 2) * 8][db * 16 + (lane / 16) * 8]);
                const u32 lo[2] = {vf[0], vf[1]}, hi[2] = {vf[2], vf[3]};
                mma_m16n8k16<T>(o[2 * db], pa, lo);
                mma_m16n8k16<T>(o[2 * db + 1], pa, hi);
            }
        }
        __syncthreads();   // tile j's buffers are refilled by the next iteration
    }
    cp_async_wait<0>();

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(FULL_MASK, l[r], 1);
        l[r] += __shfl_xor_sync(FULL_MASK, l[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int n = q0 + warp * 16 + g + 8 * r;
        if (n >= tokens)
            continue;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        T* row = out + ((i64)b * tokens + n) * C + h * D;
#pragma unroll
        for (int db = 0; db < D / 8; ++db)
            *reinterpret_cast<u32*>(row + db * 8 + 2 * t) = pack2_float<T>(o[db][2 * r] * inv, o[db][2 * r + 1] * inv);
    }
#else
    __trap();
#endif
}

extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_f16_d64(const half_t* qkv, const float* size, int tokens, int heads,
                                                                                  float scale, half_t* out)
{
    flash_attention_body<half_t, 64>(qkv, size, tokens, heads, scale, out);
}

extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_bf16_d64(const bf16_t* qkv, const float* size, int tokens, int heads,
                                                                                   float scale, bf16_t* out)
{
    flash_attention_body<bf16_t, 64>(qkv, size, tokens, heads, scale, out);
}
