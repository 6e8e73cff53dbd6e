// bipartite_match.cu: ToMe's bipartite soft matching, the scoring half (SPEC-merging §2): cosine
// similarity of every even token (set A) to every odd token (set B), reduced on the fly to the best
// B token per A token. The [ta][tb] score matrix never exists in global memory.
//
// Variants:
//   l2_normalize_rows_f32   out[row][:] = in[row][:] / ||in[row]||₂, zeros when the norm is 0 (the
//                           reference has no epsilon). One warp per row.
//   bipartite_best_f32      best[b][i] = max_j normed[b][2i]·normed[b][2j+1], best_index[b][i] = the
//                           lowest j reaching it. Block = (tile of 32 A rows, image b): A rows stay in
//                           shared memory, B tokens stream through it 32 at a time; lane l scores B
//                           token j0 + l for each of its warp's 4 A rows and keeps a running (best,
//                           lowest j) (strict >, so ties keep the earlier j), then the warp reduces the
//                           32 candidates (larger value, then lower index). Protection of the prefix
//                           tokens where their parity puts them: rows i < protected_a (class token,
//                           even-placed registers) -> (−inf, 0); columns j < protected_b (distillation
//                           token, odd-placed registers) are never candidates. A row with no candidate
//                           gets (−inf, 0), as the CPU.
//
// Shapes:   in/normed[B][T][D] -> best[B][ta] (fp32), best_index[B][ta] (int32); ta = ⌈T/2⌉, tb = ⌊T/2⌋.
// Launch:   l2_normalize_rows_f32: grid = ceil(B·T / 8), block = 256.
//           bipartite_best_f32:    grid = (ceil(ta / 32), B), block = 256, dynamic smem = (64·D + 32)·4 bytes.
// Limits:   D ≤ 191 ((64·D + 32)·4 bytes within the default 48 KiB); any T ≥ 1; B ≤ 65535.
// Params:   l2_normalize_rows_f32(in, rows, dim, out)
//           bipartite_best_f32(normed, tokens, dim, protectedA, protectedB, best, bestIndex)
//           with p prefix tokens: protectedA = ⌈p/2⌉, protectedB = ⌊p/2⌋
#include "common.cuh"

#define BM_WARPS 8
#define BM_ROWS_PER_WARP 4
#define BM_ROWS (BM_WARPS * BM_ROWS_PER_WARP)   // set-A rows per block
#define BM_TILE WARP_SIZE                      // set-B tokens per tile: one per lane
#define BM_NO_INDEX 0x7fffffff

extern "C" __global__ void l2_normalize_rows_f32(const float* __restrict__ in, int rows, int dim, float* __restrict__ out)
{
    const int row = blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;
    const int lane = threadIdx.x % WARP_SIZE;
    if (row >= rows) return;
    const float* x = in + (i64)row * dim;
    float squares = 0.0f;
    for (int d = lane; d < dim; d += WARP_SIZE) squares += x[d] * x[d];
    const float norm = sqrtf(warp_sum(squares));
    float* y = out + (i64)row * dim;
    for (int d = lane; d < dim; d += WARP_SIZE) y[d] = norm > 0.0f ? x[d] / norm : 0.0f;
}

extern "C" __global__ void __launch_bounds__(BM_WARPS * WARP_SIZE) bipartite_best_f32(
    const float* __restrict__ normed, int tokens, int dim, int protected_a, int protected_b,
    float* __restrict__ best, int* __restrict__ best_index)
{
    extern __shared__ float smem[];
    float* as = smem;                      // as[r][d], r < 32: A row a0 + r
    float* bs = smem + BM_ROWS * dim;      // bs[l][d] at l·(D+1) + d: lane l reads bank (l + d) % 32
    const int bstride = dim + 1;

    const int b = blockIdx.y, a0 = blockIdx.x * BM_ROWS;
    const int tid = threadIdx.x, warp = tid / WARP_SIZE, lane = tid % WARP_SIZE;
    const int ta = (tokens + 1) / 2, tb = tokens / 2;
    // A_i = m[2i], B_j = m[2j + 1]
    const float* m = normed + (i64)b * tokens * dim;

    for (int e = tid; e < BM_ROWS * dim; e += blockDim.x) {
        const int r = e / dim, d = e % dim, i = a0 + r;
        as[e] = i < ta ? m[(i64)(2 * i) * dim + d] : 0.0f;
    }

    float top[BM_ROWS_PER_WARP];
    int arg[BM_ROWS_PER_WARP];
#pragma unroll
    for (int r = 0; r < BM_ROWS_PER_WARP; ++r) {
        top[r] = neg_infinity();
        arg[r] = BM_NO_INDEX;
    }

    for (int j0 = 0; j0 < tb; j0 += BM_TILE) {
        __syncthreads();   // the previous tile is consumed (and as is written before the first)
        for (int e = tid; e < BM_TILE * dim; e += blockDim.x) {
            const int l = e / dim, d = e % dim, j = j0 + l;
            bs[l * bstride + d] = j < tb ? m[(i64)(2 * j + 1) * dim + d] : 0.0f;
        }
        __syncthreads();
        const int j = j0 + lane;
        const bool candidate = j < tb && j >= protected_b;
#pragma unroll
        for (int r = 0; r < BM_ROWS_PER_WARP; ++r) {
            const float* a = as + (warp * BM_ROWS_PER_WARP + r) * dim;
            float dot = 0.0f;
            for (int d = 0; d < dim; ++d) dot += a[d] * bs[lane * bstride + d];
            // j only grows within a lane, so strict > keeps the lowest j on ties (and skips NaN).
            if (candidate && dot > top[r]) {
                top[r] = dot;
                arg[r] = j;
            }
        }
    }

#pragma unroll
    for (int r = 0; r < BM_ROWS_PER_WARP; ++r) {
        float v = top[r];
        int j = arg[r];
        for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
            const float other_v = __shfl_xor_sync(FULL_MASK, v, offset);
            const int other_j = __shfl_xor_sync(FULL_MASK, j, offset);
            if (other_v > v || (other_v == v && other_j < j)) {
                v = other_v;
                j = other_j;
            }
        }
        const int i = a0 + warp * BM_ROWS_PER_WARP + r;
        if (lane == 0 && i < ta) {
            if (j == BM_NO_INDEX || i < protected_a) {
                v = neg_infinity();
                j = 0;
            }
            best[(i64)b * ta + i] = v;
            best_index[(i64)b * ta + i] = j;
        }
    }
}
