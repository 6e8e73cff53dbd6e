// assign_similar.cu: the matching half of kth and random bipartite merging (SPEC-merging §3): every source
// token goes to its most similar kept token (cosine similarity of the metric). Which tokens are sources,
// kept or dropped is decided on the host (TokenRoles); this kernel only scores and picks.
//
// Variants:
//   assign_similar_f32   dest[b][t] for every token t of image b, from role[b][t] (≥ 0: kept as output token
//                        role; −1: source; other negatives: dropped) and the L2-normalized metric
//                        (l2_normalize_rows_f32 of bipartite_match.cu: zero rows stay zero, similarity 0):
//                          kept:    dest = role[t]
//                          dropped: dest = −1
//                          source:  u* = the lowest u maximizing normed[t]·normed[u] over the candidates
//                                   u with role[b][u] ≥ protected_outputs; dest = role[u*], −1 if none.
//                        Block = (tile of 32 rows t0 + r, image b), the bipartite_best_f32 pattern: the rows
//                        stay in shared memory, the candidates stream through it 32 at a time; lane l scores
//                        candidate u0 + l for each of its warp's 4 rows and keeps a running (best, lowest u)
//                        (strict >, so ties keep the earlier u), then the warp reduces the 32 candidates
//                        (larger value, then lower index). A block whose 32 rows hold no source writes the
//                        kept/dropped answers and skips the scoring (uniform: __syncthreads_or).
//                        The dot products are sequential over d per lane (the CPU's are vectorized): scores
//                        agree to rounding, so two candidates within ~1e-7 of each other may swap.
//
// Shapes:   normed[B][T][D] (fp32), role[B][T] (int32) -> dest[B][T] (int32).
// Launch:   grid = (ceil(T / 32), B), block = 256, dynamic smem = (64·D + 32)·4 bytes.
// Limits:   D ≤ 191 ((64·D + 32)·4 bytes within the default 48 KiB); any T ≥ 1; B ≤ 65535.
//           A NaN score is never chosen (the CPU takes the first candidate whatever its score).
// Params:   assign_similar_f32(normed, role, tokens, dim, protectedOutputs, dest)
#include "common.cuh"

#define AS_WARPS 8
#define AS_ROWS_PER_WARP 4
#define AS_ROWS (AS_WARPS * AS_ROWS_PER_WARP)   // rows (tokens to assign) per block
#define AS_TILE WARP_SIZE                      // candidates per tile: one per lane
#define AS_NO_INDEX 0x7fffffff
#define AS_SOURCE (-1)

extern "C" __global__ void __launch_bounds__(AS_WARPS * WARP_SIZE) assign_similar_f32(
    const float* __restrict__ normed, const int* __restrict__ role, int tokens, int dim, int protected_outputs,
    int* __restrict__ dest)
{
    extern __shared__ float smem[];
    float* as = smem;                      // as[r][d], r < 32: row t0 + r
    float* bs = smem + AS_ROWS * dim;      // bs[l][d] at l·(D+1) + d: lane l reads bank (l + d) % 32
    const int bstride = dim + 1;

    const int b = blockIdx.y, t0 = blockIdx.x * AS_ROWS;
    const int tid = threadIdx.x, warp = tid / WARP_SIZE, lane = tid % WARP_SIZE;
    const float* m = normed + (i64)b * tokens * dim;   // m[t][d] = m[t·D + d]
    const int* rb = role + (i64)b * tokens;
    int* db = dest + (i64)b * tokens;

    // Rows t0 + warp·4 + r belong to this warp; lane 0 writes them at the end.
    const int any_source = tid < AS_ROWS && t0 + tid < tokens && rb[t0 + tid] == AS_SOURCE;
    if (!__syncthreads_or(any_source)) {
        if (tid < AS_ROWS && t0 + tid < tokens) {
            const int own = rb[t0 + tid];
            db[t0 + tid] = own >= 0 ? own : -1;
        }
        return;   // uniform across the block
    }

    for (int e = tid; e < AS_ROWS * dim; e += blockDim.x) {
        const int r = e / dim, d = e % dim, t = t0 + r;
        as[e] = t < tokens ? m[(i64)t * dim + d] : 0.0f;
    }

    float top[AS_ROWS_PER_WARP];
    int arg[AS_ROWS_PER_WARP];
#pragma unroll
    for (int r = 0; r < AS_ROWS_PER_WARP; ++r) {
        top[r] = neg_infinity();
        arg[r] = AS_NO_INDEX;
    }

    for (int u0 = 0; u0 < tokens; u0 += AS_TILE) {
        __syncthreads();   // the previous tile is consumed (and as is written before the first)
        for (int e = tid; e < AS_TILE * dim; e += blockDim.x) {
            const int l = e / dim, d = e % dim, u = u0 + l;
            bs[l * bstride + d] = u < tokens ? m[(i64)u * dim + d] : 0.0f;
        }
        __syncthreads();
        const int u = u0 + lane;
        const bool candidate = u < tokens && rb[u] >= protected_outputs;
#pragma unroll
        for (int r = 0; r < AS_ROWS_PER_WARP; ++r) {
            const float* a = as + (warp * AS_ROWS_PER_WARP + r) * dim;
            float dot = 0.0f;
            for (int d = 0; d < dim; ++d) dot += a[d] * bs[lane * bstride + d];
            // u only grows within a lane, so strict > keeps the lowest u on ties (and skips NaN).
            if (candidate && dot > top[r]) {
                top[r] = dot;
                arg[r] = u;
            }
        }
    }

#pragma unroll
    for (int r = 0; r < AS_ROWS_PER_WARP; ++r) {
        float v = top[r];
        int u = arg[r];
        for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
            const float other_v = __shfl_xor_sync(FULL_MASK, v, offset);
            const int other_u = __shfl_xor_sync(FULL_MASK, u, offset);
            if (other_v > v || (other_v == v && other_u < u)) {
                v = other_v;
                u = other_u;
            }
        }
        const int t = t0 + warp * AS_ROWS_PER_WARP + r;
        if (lane == 0 && t < tokens) {
            const int own = rb[t];
            if (own != AS_SOURCE) db[t] = own >= 0 ? own : -1;
            else db[t] = u == AS_NO_INDEX ? -1 : rb[u];
        }
    }
}
