// flash_attention.cu: fused multi-head attention with ToMe's size bias on tensor cores, fp16 or bf16 in and out,
// fp32 softmax and accumulation (FlashAttention-2's scheme), with ToMe's merge metric and ToMeCIS's class-token row.
//
// Variants (D = head dim ∈ {32, 64, 80, 96, 128}; one template per instruction set):
//   flash_attention_{f16,bf16}_dD      sm_80+: mma.sync m16n8k16 with ldmatrix, K/V double-buffered by cp.async.
//       Block = (ceil(T / 64) query tiles, H, B), 4 warps, each owning 16 query rows. Q's tile passes through shared
//       memory once into registers (mma A fragments). K/V tiles of BK keys (64 for D ≤ 80, else 32: two buffers of
//       K and V stay within 48 KiB of static shared memory) load while the previous tile is computed. Per tile:
//       S = Q·Kᵀ (ldmatrix of K rows), the logits scaled and biased by log size before the running max, an online
//       softmax in fp32 registers (a row's max and sum reduced across the 4 lanes that hold it), P rounded to the
//       input type and reused in registers as the A fragments of O += P·V (ldmatrix .trans of V rows).
//       On sm_70/75 these entry points exist (every kernel file compiles for every architecture) but stop with a trap.
//   flash_attention_m884_f16_dD        sm_70+ (V100, T4): mma.sync m8n8k4, fp16 only (no bf16 tensor cores before
//       sm_80). Same grid and block. A warp's 16 query rows × (32 keys or D dims) split into four 8×(16 keys or
//       D/2 dims) quarters, one per quad-pair; K/V tiles of 32 keys, single-buffered by plain 16-byte loads. P goes
//       through shared memory, since m8n8k4's accumulator layout is not its A layout.
//   flash_class_row
//       class_attention[b][m] = (Σ_h exp(logit[b][h][m] − max_bh) / sum_bh) / H, heads in order: ToMeCIS's row from the
//       logits and (max, sum) of query 0 that the attention kernels wrote while they had K's tiles at hand.
//
//   out[b][n][h][:] = softmax_m(q·k_m · scale + log size[b][m]) · v. size == null: no bias. size 0 -> log 0 = -inf ->
//   weight exactly 0; a row whose keys are all masked so far keeps a zero state (no -inf − (-inf)), and one with every
//   key masked writes zeros. Keys and queries past T are zero-filled in shared memory (never read from global) and
//   masked to -inf; rows past T are never written.
//   key_mean != null: key_mean[b][n][:] = (Σ_h k[b][n][h][:]) / H in fp32, heads in order (bit-identical to the CPU on
//   the same half keys). A block holds one head's keys only, so the metric cannot come from its tiles without a
//   cross-head reduction (atomics: nondeterministic); instead each block of query tile x sums, for the rows of its
//   tile it owns (row r with r % H == h), every head's keys from global memory (L2-resident: the head blocks of that
//   tile read the same rows): one extra read of K in the same launch, no extra kernel.
//   class_logits != null (then class_stats too): the blocks of query tile 0 write query 0's biased logits to
//   class_logits[b][h][m] and its final (max, sum) to class_stats[b][h][0..1]; flash_class_row turns them into the row.
//
// Layout:   qkv[B][T][3][H][D] (q at h·D, k at C + h·D, v at 2C + h·D of a token's row, C = H·D), out[B][T][C],
//           size[B][T], key_mean[B][T][D], class_logits[B][H][T], class_stats[B][H][2], class_attention[B][T] fp32.
//           qkv 16-byte aligned (every row's offset is a multiple of D ≥ 32 elements).
// Launch:   flash_attention_*: grid = (ceil(T / 64), H, B), block = 128, static smem only (see FlashTile / M884Tile).
//           flash_class_row:   grid = (ceil(T / 128), B), block = 128.
// Limits:   any T ≥ 1 (tested to 1025); H, B ≤ 65535.
// Params:   flash_attention_*(qkv, size, tokens, heads, scale, out, key_mean, class_logits, class_stats)
//           flash_class_row(class_logits, class_stats, tokens, heads, class_attention)
#include "tensor_core.cuh"

#define FA_WARPS 4
#define FA_THREADS (FA_WARPS * WARP_SIZE)
#define FA_BQ (FA_WARPS * 16)   // queries per block: 16 rows per warp
#define FA_PAD 8                // row padding in elements: rows stay 16-byte aligned; 8 ldmatrix rows hit 8 bank groups

// 16 bytes global → shared: by cp.async where asked (sm_80+), else through registers.
template <bool Async> TOME_DEVICE void flash_copy16(void* dst, const void* src)
{
#if __CUDA_ARCH__ >= 800
    if (Async) {
        cp_async_16(dst, src);
        return;
    }
#endif
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
}

// Rows [first, first + count) of one part (offset 0 q, C k, 2C v) of head h into a tile with `ld` elements per row;
// zeros for rows at or past `tokens` (never read).
template <typename T, int D, bool Async>
TOME_DEVICE void flash_load_rows(T* tile, int ld, int count, const T* base, i64 row_stride, int part_offset, int first, int tokens)
{
    constexpr int chunks = D / 8;   // 16-byte chunks per row
    for (int c = threadIdx.x; c < count * chunks; c += FA_THREADS) {
        const int r = c / chunks, col = (c % chunks) * 8, n = first + r;
        T* dst = tile + r * ld + col;
        if (n < tokens) {
            flash_copy16<Async>(dst, base + (i64)n * row_stride + part_offset + col);
        } else {
            u32* zero = reinterpret_cast<u32*>(dst);
            zero[0] = zero[1] = zero[2] = zero[3] = 0;
        }
    }
}

// log size of keys [first, first + count); -inf past T (and for size 0).
TOME_DEVICE void flash_load_bias(float* bias, int count, const float* size_row, int first, int tokens)
{
    const int j = threadIdx.x;
    if (j < count) {
        const int n = first + j;
        bias[j] = n >= tokens ? neg_infinity() : size_row != nullptr ? logf(size_row[n]) : 0.0f;
    }
}

// ToMe's metric for the rows q0 + r of this block's query tile with r % heads == h (see the file comment).
template <typename T, int D>
TOME_DEVICE void flash_key_mean(const T* image, i64 row_stride, int heads, int h, int q0, int tokens, float* key_mean)
{
    const int C = heads * D;
    const int rows = h < FA_BQ ? (FA_BQ - 1 - h) / heads + 1 : 0;
    for (int i = threadIdx.x; i < rows * D; i += FA_THREADS) {
        const int n = q0 + h + heads * (i / D), d = i % D;
        if (n >= tokens)
            break;   // i only grows, and with it n
        const T* k = image + (i64)n * row_stride + C + d;
        float sum = to_float(k[0]);
        for (int hh = 1; hh < heads; ++hh)
            sum = __fadd_rn(sum, to_float(k[hh * D]));
        key_mean[(i64)n * D + d] = sum / (float)heads;
    }
}

// The lanes holding one accumulator row: this lane's and those at xor A, B, xor A ^ B (a row's max and sum over them).
template <int A, int B> struct RowLanes {
    static TOME_DEVICE float max(float x)
    {
        x = fmaxf(x, __shfl_xor_sync(FULL_MASK, x, A));
        return fmaxf(x, __shfl_xor_sync(FULL_MASK, x, B));
    }
    static TOME_DEVICE float sum(float x)
    {
        x += __shfl_xor_sync(FULL_MASK, x, A);
        return x + __shfl_xor_sync(FULL_MASK, x, B);
    }
};

// Where an mma accumulator's element i sits: which of the lane's two rows (slot), N elements per 8 columns.
struct Mma16816Rows : RowLanes<1, 2> {   // rows g, g + 8: elements 0-1, 2-3; a row's 8 columns over the quad
    static constexpr int N = 4;
    static TOME_DEVICE int slot(int i) { return i >> 1; }
};

struct Mma884Rows : RowLanes<2, 8> {   // rows X, X + 2: i & 2 clear, set; a row over lanes xor 2 and the quad-pair xor 8
    static constexpr int N = 8;
    static TOME_DEVICE int slot(int i) { return (i >> 1) & 1; }
};

// One tile of the online softmax on already scaled and biased logits s: new running max m, s ← exp(s − m), the lane's
// part of the running sums l and the output accumulator o rescaled by exp(m_old − m).
template <class L, int NS, int NO>
TOME_DEVICE void flash_softmax_tile(float (&s)[NS][L::N], float (&o)[NO][L::N], float (&m)[2], float (&l)[2])
{
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nb = 0; nb < NS; ++nb)
#pragma unroll
        for (int i = 0; i < L::N; ++i)
            mx[L::slot(i)] = fmaxf(mx[L::slot(i)], s[nb][i]);
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        mx[r] = L::max(mx[r]);
        const bool empty = mx[r] == neg_infinity();   // every key so far masked: keep the zero state
        alpha[r] = empty ? 1.0f : expf(m[r] - mx[r]);
        m[r] = mx[r];
        l[r] *= alpha[r];
    }
#pragma unroll
    for (int nb = 0; nb < NS; ++nb) {
#pragma unroll
        for (int i = 0; i < L::N; ++i) {
            const int r = L::slot(i);
            s[nb][i] = m[r] == neg_infinity() ? 0.0f : expf(s[nb][i] - m[r]);
            l[r] += s[nb][i];
        }
    }
#pragma unroll
    for (int db = 0; db < NO; ++db)
#pragma unroll
        for (int i = 0; i < L::N; ++i)
            o[db][i] *= alpha[L::slot(i)];
}

// Query 0's running max and total (slot 0 of lane 0 of warp 0 in both layouts, after the row sums).
TOME_DEVICE void flash_class_stats(float* class_stats, int heads, const float (&m)[2], const float (&l)[2])
{
    if (class_stats != nullptr && blockIdx.x == 0 && threadIdx.x == 0) {
        float* stats = class_stats + ((i64)blockIdx.z * heads + blockIdx.y) * 2;
        stats[0] = m[0];
        stats[1] = l[0];
    }
}

#define FLASH_PARAMS(T)                                                                                               \
    const T *__restrict__ qkv, const float *__restrict__ size, int tokens, int heads, float scale, T *__restrict__ out, \
        float *__restrict__ key_mean, float *__restrict__ class_logits, float *__restrict__ class_stats
#define FLASH_ARGS qkv, size, tokens, heads, scale, out, key_mean, class_logits, class_stats

// Keys per K/V tile and row stride of the m16n8k16 kernel's tiles (the file comment says why BK shrinks).
template <int D> struct FlashTile {
    static constexpr int BK = D <= 80 ? 64 : 32;
    static constexpr int LD = D + FA_PAD;
};

template <typename T, int D> TOME_DEVICE void flash_attention_body(FLASH_PARAMS(T))
{
#if __CUDA_ARCH__ >= 800
    constexpr int BK = FlashTile<D>::BK, LD = FlashTile<D>::LD;
    static_assert(D % 16 == 0 && BK % 16 == 0 && FA_BQ <= 2 * BK, "tiles are whole mma shapes; Q fits in one K/V buffer");
    // kv[buf]: K rows [0, BK), V rows [BK, 2·BK). Q's tile passes through kv[1] before the first K/V tile lands there.
    __align__(16) __shared__ T kv[2][2 * BK][LD];
    __shared__ float bias[2][BK];

    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * FA_BQ;
    const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE, g = lane / 4, t = lane % 4;
    const int C = heads * D;
    const i64 row_stride = 3LL * C;
    const T* image = qkv + (i64)b * tokens * row_stride;
    const T* base = image + h * D;
    const float* size_row = size != nullptr ? size + (i64)b * tokens : nullptr;
    float* class_row = class_logits != nullptr && q0 == 0 && warp == 0 && g == 0 ? class_logits + ((i64)b * heads + h) * tokens : nullptr;

    flash_load_rows<T, D, true>(&kv[1][0][0], LD, FA_BQ, base, row_stride, 0, q0, tokens);
    flash_load_rows<T, D, true>(&kv[0][0][0], LD, BK, base, row_stride, C, 0, tokens);
    flash_load_rows<T, D, true>(&kv[0][BK][0], LD, BK, base, row_stride, 2 * C, 0, tokens);
    flash_load_bias(bias[0], BK, size_row, 0, tokens);
    cp_async_commit();
    if (key_mean != nullptr)   // while the copies are in flight
        flash_key_mean<T, D>(image, row_stride, heads, h, q0, tokens, key_mean + (i64)b * tokens * D);
    cp_async_wait<0>();
    __syncthreads();
    u32 qf[D / 16][4];   // this warp's 16 query rows as A fragments, one per 16 dims
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(qf[kk], &kv[1][warp * 16 + lane % 16][kk * 16 + (lane / 16) * 8]);
    __syncthreads();   // kv[1] is free for tile 1

    float o[D / 8][4] = {};   // O: 16 rows × D, fragment d-block by d-block
    float m[2] = {neg_infinity(), neg_infinity()};   // running max of rows g and g + 8
    float l[2] = {0.0f, 0.0f};   // this lane's part of their running sums (the quad's total at the end)

    const int tiles = (tokens + BK - 1) / BK;
    for (int j = 0; j < tiles; ++j) {
        const int buf = j & 1;
        if (j + 1 < tiles) {
            flash_load_rows<T, D, true>(&kv[buf ^ 1][0][0], LD, BK, base, row_stride, C, (j + 1) * BK, tokens);
            flash_load_rows<T, D, true>(&kv[buf ^ 1][BK][0], LD, BK, base, row_stride, 2 * C, (j + 1) * BK, tokens);
            flash_load_bias(bias[buf ^ 1], BK, size_row, (j + 1) * BK, tokens);
        }
        cp_async_commit();
        cp_async_wait<1>();   // everything but tile j + 1 has landed
        __syncthreads();

        // S = Q·Kᵀ: B[k = dim][n = key] = K[key][dim], so K's rows load untransposed; one x4 covers 16 keys × 16 dims.
        float s[BK / 8][4] = {};
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
            for (int nb = 0; nb < BK / 16; ++nb) {
                u32 kf[4];
                ldmatrix_x4(kf, &kv[buf][nb * 16 + (lane / 16) * 8 + lane % 8][kk * 16 + ((lane / 8) % 2) * 8]);
                const u32 lo[2] = {kf[0], kf[1]}, hi[2] = {kf[2], kf[3]};
                mma_m16n8k16<T>(s[2 * nb], qf[kk], lo);
                mma_m16n8k16<T>(s[2 * nb + 1], qf[kk], hi);
            }
        }
        // Element i of block nb is row g + 8·(i / 2), key nb·8 + 2t + i % 2.
#pragma unroll
        for (int nb = 0; nb < BK / 8; ++nb) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int col = nb * 8 + 2 * t + (i & 1);
                s[nb][i] = s[nb][i] * scale + bias[buf][col];
                if (class_row != nullptr && i < 2 && j * BK + col < tokens)
                    class_row[j * BK + col] = s[nb][i];
            }
        }
        flash_softmax_tile<Mma16816Rows>(s, o, m, l);

        // O += P·V: P's accumulator fragments are its A fragments (two key blocks of 8 per 16-key step); B[k = key][n = dim]
        // = V[key][dim] wants pairs of keys, so V's rows load transposed.
#pragma unroll
        for (int kc = 0; kc < BK / 16; ++kc) {
            const u32 pa[4] = {pack2_float<T>(s[2 * kc][0], s[2 * kc][1]), pack2_float<T>(s[2 * kc][2], s[2 * kc][3]),
                               pack2_float<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]), pack2_float<T>(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
            for (int db = 0; db < D / 16; ++db) {
                u32 vf[4];
                ldmatrix_x4_trans(vf, &kv[buf][BK + kc * 16 + lane % 8 + ((lane / 8) % 2) * 8][db * 16 + (lane / 16) * 8]);
                const u32 lo[2] = {vf[0], vf[1]}, hi[2] = {vf[2], vf[3]};
                mma_m16n8k16<T>(o[2 * db], pa, lo);
                mma_m16n8k16<T>(o[2 * db + 1], pa, hi);
            }
        }
        __syncthreads();   // tile j's buffers are refilled by the next iteration
    }
    cp_async_wait<0>();

#pragma unroll
    for (int r = 0; r < 2; ++r)
        l[r] = Mma16816Rows::sum(l[r]);
    flash_class_stats(class_stats, heads, m, l);
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

#define M884_BK 32   // keys per tile: 16 per quad-pair column half

template <int D> TOME_DEVICE void flash_attention_m884_body(FLASH_PARAMS(half_t))
{
    constexpr int BK = M884_BK, LD = D + FA_PAD, PLD = BK + FA_PAD, HD = D / 2;
    static_assert(D % 16 == 0, "each quad-pair's D/2 output dims are whole 8-column blocks");
    __align__(16) __shared__ half_t qs[FA_BQ][LD];
    __align__(16) __shared__ half_t ks[BK][LD];
    __align__(16) __shared__ half_t vs[BK][LD];
    __align__(16) __shared__ half_t ps[FA_WARPS][16][PLD];   // each warp's P, re-read as m8n8k4 A fragments
    __shared__ float bias[BK];

    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * FA_BQ;
    const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
    // Quad-pair qp takes the warp's rows 8·(qp & 1).. and key (or output dim) half qp >> 1. Its A rows and B .col
    // columns are lane % 4 + 4·hi; its accumulator rows crow, crow + 2 and columns (i & 4) + (lane & 2) + (i & 1).
    const int qp = (lane / 4) % 4, hi = lane / 16, rows8 = 8 * (qp & 1), half_ = qp >> 1;
    const int arow = lane % 4 + 4 * hi, crow = (lane & 1) + 4 * hi, ccol = lane & 2;
    const int C = heads * D;
    const i64 row_stride = 3LL * C;
    const half_t* image = qkv + (i64)b * tokens * row_stride;
    const half_t* base = image + h * D;
    const float* size_row = size != nullptr ? size + (i64)b * tokens : nullptr;
    float* class_row = class_logits != nullptr && q0 == 0 && warp == 0 && rows8 == 0 && crow == 0
                           ? class_logits + ((i64)b * heads + h) * tokens : nullptr;

    flash_load_rows<half_t, D, false>(&qs[0][0], LD, FA_BQ, base, row_stride, 0, q0, tokens);
    if (key_mean != nullptr)
        flash_key_mean<half_t, D>(image, row_stride, heads, h, q0, tokens, key_mean + (i64)b * tokens * D);

    float o[HD / 8][8] = {};   // rows rows8 + crow (+2), dims half_·D/2 + 8·db + …
    float m[2] = {neg_infinity(), neg_infinity()}, l[2] = {0.0f, 0.0f};
    const half_t* qrow = qs[warp * 16 + rows8 + arow];
    const half_t* prow = ps[warp][rows8 + arow];

    for (int k0 = 0; k0 < tokens; k0 += BK) {
        __syncthreads();   // the previous tile and P are consumed (and qs is written before the first)
        flash_load_rows<half_t, D, false>(&ks[0][0], LD, BK, base, row_stride, C, k0, tokens);
        flash_load_rows<half_t, D, false>(&vs[0][0], LD, BK, base, row_stride, 2 * C, k0, tokens);
        flash_load_bias(bias, BK, size_row, k0, tokens);
        __syncthreads();

        // S = Q·Kᵀ over this quad-pair's 16 keys: B (.col) column n = key, rows = 4 dims: K[key][4kk..4kk+3].
        float s[2][8] = {};
#pragma unroll 5   // not fully: ptxas then hoists the loads of all D/4 steps and spills 8 B at D = 80 or 96 on sm_80/89
        for (int kk = 0; kk < D / 4; ++kk) {
            const u32 a[2] = {*reinterpret_cast<const u32*>(qrow + 4 * kk), *reinterpret_cast<const u32*>(qrow + 4 * kk + 2)};
#pragma unroll
            for (int nb = 0; nb < 2; ++nb) {
                const half_t* k = ks[16 * half_ + 8 * nb + arow] + 4 * kk;
                const u32 bf[2] = {*reinterpret_cast<const u32*>(k), *reinterpret_cast<const u32*>(k + 2)};
                mma_m8n8k4_f16<false>(s[nb], a, bf);
            }
        }
#pragma unroll
        for (int nb = 0; nb < 2; ++nb) {
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int col = 16 * half_ + 8 * nb + (i & 4) + ccol + (i & 1);
                s[nb][i] = s[nb][i] * scale + bias[col];
                if (class_row != nullptr && (i & 2) == 0 && k0 + col < tokens)
                    class_row[k0 + col] = s[nb][i];
            }
        }
        flash_softmax_tile<Mma884Rows>(s, o, m, l);

#pragma unroll
        for (int nb = 0; nb < 2; ++nb)
#pragma unroll
            for (int i = 0; i < 8; i += 2)
                *reinterpret_cast<u32*>(&ps[warp][rows8 + crow + (i & 2)][16 * half_ + 8 * nb + (i & 4) + ccol]) =
                    pack2_float<half_t>(s[nb][i], s[nb][i + 1]);
        __syncwarp();

        // O += P·V over the tile's keys 4 at a time: A = P[row][4kc..], B (.row) row = key 4kc + lane % 4, 4 dims.
#pragma unroll
        for (int kc = 0; kc < BK / 4; ++kc) {
            const u32 a[2] = {*reinterpret_cast<const u32*>(prow + 4 * kc), *reinterpret_cast<const u32*>(prow + 4 * kc + 2)};
#pragma unroll
            for (int db = 0; db < HD / 8; ++db) {
                const half_t* v = vs[4 * kc + lane % 4] + half_ * HD + 8 * db + 4 * hi;
                const u32 bf[2] = {*reinterpret_cast<const u32*>(v), *reinterpret_cast<const u32*>(v + 2)};
                mma_m8n8k4_f16<true>(o[db], a, bf);
            }
        }
    }

#pragma unroll
    for (int r = 0; r < 2; ++r)
        l[r] = Mma884Rows::sum(l[r]);
    flash_class_stats(class_stats, heads, m, l);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int n = q0 + warp * 16 + rows8 + crow + 2 * r;
        if (n >= tokens)
            continue;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        half_t* row = out + ((i64)b * tokens + n) * C + h * D + half_ * HD + ccol;
#pragma unroll
        for (int db = 0; db < HD / 8; ++db)
#pragma unroll
            for (int e = 0; e < 2; ++e)   // elements 2r + 4e, 2r + 4e + 1: columns 4e + ccol, + 1
                *reinterpret_cast<u32*>(row + 8 * db + 4 * e) = pack2_float<half_t>(o[db][2 * r + 4 * e] * inv, o[db][2 * r + 4 * e + 1] * inv);
    }
}

#define FLASH_ENTRY(NAME, T, D)                                                                                      \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_##NAME##_d##D(FLASH_PARAMS(T))          \
    {                                                                                                                \
        flash_attention_body<T, D>(FLASH_ARGS);                                                                      \
    }
#define FLASH_M884_ENTRY(D)                                                                                          \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_m884_f16_d##D(FLASH_PARAMS(half_t))     \
    {                                                                                                                \
        flash_attention_m884_body<D>(FLASH_ARGS);                                                                    \
    }
#define FLASH_HEAD_DIMS(ENTRY, ...) ENTRY(__VA_ARGS__ 32) ENTRY(__VA_ARGS__ 64) ENTRY(__VA_ARGS__ 80) ENTRY(__VA_ARGS__ 96) ENTRY(__VA_ARGS__ 128)

FLASH_HEAD_DIMS(FLASH_ENTRY, f16, half_t, )
FLASH_HEAD_DIMS(FLASH_ENTRY, bf16, bf16_t, )
FLASH_HEAD_DIMS(FLASH_M884_ENTRY, )

extern "C" __global__ void flash_class_row(const float* __restrict__ class_logits, const float* __restrict__ class_stats, int tokens,
                                           int heads, float* __restrict__ class_attention)
{
    const int key = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (key >= tokens)
        return;
    float total = 0.0f;
    for (int h = 0; h < heads; ++h) {
        const i64 bh = (i64)b * heads + h;
        const float row_max = class_stats[bh * 2], row_sum = class_stats[bh * 2 + 1];
        total = __fadd_rn(total, row_sum > 0.0f ? expf(class_logits[bh * tokens + key] - row_max) / row_sum : 0.0f);
    }
    class_attention[(i64)b * tokens + key] = total / (float)heads;
}
