// merge.cu: ToMe's size-weighted merge (merge_wavg) into the new token order of SPEC-merging §2,
// deterministic: every output token is summed by one warp in a fixed order, no float atomics. The
// arithmetic is the CPU's, operation for operation and unfused (__fmul_rn/__fadd_rn/__fdiv_rn), so
// the result is bit-identical to it.
//
// Variants:
//   merge_plan_i32     One block per image. From order (ranked set-A indices) and best_index:
//                      new_index[t] of every old token t (kept A of rank k: 2k for k < protected_a, the
//                      prefix tokens in A, else k + protected_b; source A: its destination's; B_j: 2j + 1
//                      for j < protected_b, the prefix tokens in B, else kept + j; with p prefix tokens
//                      protected_a = ⌈p/2⌉, protected_b = ⌊p/2⌋), then own_of[o] (the old token that output o
//                      continues), src_dst[i] (the destination j of source A_i, −1 when A_i is kept)
//                      and groups_out[g] = new_index[groups[g]].
//   merge_gather_f32   One warp per output token o (own = own_of[o]):
//                        y = x[own]·size[own]; total = size[own]
//                        for each source i with src_dst[i] == own's j, ascending i (32 at a time by ballot):
//                          y = x[2i]·size[2i] + y; total = total + size[2i]
//                        x_out[o] = y / total; size_out[o] = total
//                      lanes stride over channels (each lane owns its channels, so x_out is the accumulator).
//   merge_gather_weighted_f32  ToMeCIS: the same gather with the scores w as the value weights. First every
//                      lane sums the group's weights in the gather's order (ws = w[own] + w[2i] + ...,
//                      sources ascending; uniform across the warp), then
//                        ws > 0:    y = Σ x·w / ws                  (the group's score-weighted mean)
//                        otherwise: y = Σ x·size / total            (all-zero or NaN scores: the size mean)
//                      with the products and sums of merge_gather_f32; size_out = total either way.
//                      The CPU computes both and keeps one per group: the same values.
//
// Shapes:   x[B][T][C], size[B][T], groups[B][T0], order[B][ta], best_index[B][ta]
//           -> x_out[B][T−r][C], size_out[B][T−r], groups_out[B][T0]; scratch own_of[B][T−r], src_dst[B][ta].
// Launch:   merge_plan_i32:   grid = B, block = 256, dynamic smem = (ta + T)·4 bytes.
//           merge_gather_f32, merge_gather_weighted_f32: grid = ceil(B·(T−r) / 8), block = 256.
// Limits:   T ≤ 8192 (shared memory of the plan); 0 ≤ r ≤ ta − protected_a.
// Params:   merge_plan_i32(order, bestIndex, groups, tokens, originalTokens, r, protectedA, protectedB, ownOf, srcDst, groupsOut)
//           merge_gather_f32(x, size, ownOf, srcDst, batch, tokens, channels, r, xOut, sizeOut)
//           merge_gather_weighted_f32(x, size, weight, ownOf, srcDst, batch, tokens, channels, r, xOut, sizeOut)
//           weight[B][T] as size.
#include "common.cuh"

extern "C" __global__ void merge_plan_i32(
    const int* __restrict__ order, const int* __restrict__ best_index, const int* __restrict__ groups,
    int tokens, int original_tokens, int r, int protected_a, int protected_b,
    int* __restrict__ own_of, int* __restrict__ src_dst, int* __restrict__ groups_out)
{
    extern __shared__ int plan[];
    const int ta = (tokens + 1) / 2, kept = ta - r, new_tokens = tokens - r;
    int* pos_of = plan;          // pos_of[i]: rank of A_i in order
    int* new_index = plan + ta;  // new_index[t]: output position of old token t
    const int b = blockIdx.x;
    const int* ord = order + (i64)b * ta;
    const int* dst = best_index + (i64)b * ta;

    for (int p = threadIdx.x; p < ta; p += blockDim.x) pos_of[ord[p]] = p;
    __syncthreads();

    for (int t = threadIdx.x; t < tokens; t += blockDim.x) {
        const int half = t >> 1;   // A_half for even t, B_half for odd t
        int j = half;              // the B token t lands in (odd t, or a source's destination)
        bool lands_in_b = (t & 1) != 0;
        int ni = 0;
        if (!lands_in_b) {
            const int p = pos_of[half];
            if (p >= r) {
                const int k = p - r;
                ni = k < protected_a ? 2 * k : k + protected_b;
                src_dst[(i64)b * ta + half] = -1;
            } else {
                j = dst[half];
                lands_in_b = true;
                src_dst[(i64)b * ta + half] = j;
            }
        }
        if (lands_in_b) ni = j < protected_b ? 2 * j + 1 : kept + j;
        new_index[t] = ni;
        const bool is_source = (t & 1) == 0 && pos_of[half] < r;
        if (!is_source) own_of[(i64)b * new_tokens + ni] = t;
    }
    __syncthreads();

    for (int g = threadIdx.x; g < original_tokens; g += blockDim.x)
        groups_out[(i64)b * original_tokens + g] = new_index[groups[(i64)b * original_tokens + g]];
}

extern "C" __global__ void merge_gather_f32(
    const float* __restrict__ x, const float* __restrict__ size, const int* __restrict__ own_of,
    const int* __restrict__ src_dst, int batch, int tokens, int channels, int r,
    float* __restrict__ x_out, float* __restrict__ size_out)
{
    const int new_tokens = tokens - r, ta = (tokens + 1) / 2;
    const i64 w = (i64)blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;   // = b·(T−r) + o
    const int lane = threadIdx.x % WARP_SIZE;
    if (w >= (i64)batch * new_tokens) return;   // whole warps only
    const int b = (int)(w / new_tokens);
    const float* xb = x + (i64)b * tokens * channels;
    const float* sb = size + (i64)b * tokens;
    float* y = x_out + w * channels;

    const int own = own_of[w];
    float total = sb[own];
    for (int c = lane; c < channels; c += WARP_SIZE) y[c] = __fmul_rn(xb[(i64)own * channels + c], total);

    if (own & 1) {
        const int j = own >> 1;
        const int* sd = src_dst + (i64)b * ta;
        for (int base = 0; base < ta; base += WARP_SIZE) {
            const int i = base + lane;
            unsigned mask = __ballot_sync(FULL_MASK, i < ta && sd[i] == j);
            while (mask != 0) {   // uniform: every lane holds the same mask
                const int src = 2 * (base + __ffs(mask) - 1);
                mask &= mask - 1;
                const float s = sb[src];
                for (int c = lane; c < channels; c += WARP_SIZE)
                    y[c] = __fadd_rn(__fmul_rn(xb[(i64)src * channels + c], s), y[c]);
                total = __fadd_rn(total, s);
            }
        }
    }

    for (int c = lane; c < channels; c += WARP_SIZE) y[c] = __fdiv_rn(y[c], total);
    if (lane == 0) size_out[w] = total;
}

extern "C" __global__ void merge_gather_weighted_f32(
    const float* __restrict__ x, const float* __restrict__ size, const float* __restrict__ weight,
    const int* __restrict__ own_of, const int* __restrict__ src_dst, int batch, int tokens, int channels, int r,
    float* __restrict__ x_out, float* __restrict__ size_out)
{
    const int new_tokens = tokens - r, ta = (tokens + 1) / 2;
    const i64 w = (i64)blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;   // = b·(T−r) + o
    const int lane = threadIdx.x % WARP_SIZE;
    if (w >= (i64)batch * new_tokens) return;   // whole warps only
    const int b = (int)(w / new_tokens);
    const float* xb = x + (i64)b * tokens * channels;
    const float* sb = size + (i64)b * tokens;
    const float* wb = weight + (i64)b * tokens;
    const int* sd = src_dst + (i64)b * ta;
    float* y = x_out + w * channels;

    const int own = own_of[w];
    // Pass 1 (scalars only): the group's weight and size totals, summed in the order pass 2 adds the rows.
    float weight_total = wb[own], total = sb[own];
    if (own & 1) {
        const int j = own >> 1;
        for (int base = 0; base < ta; base += WARP_SIZE) {
            const int i = base + lane;
            unsigned mask = __ballot_sync(FULL_MASK, i < ta && sd[i] == j);
            while (mask != 0) {   // uniform: every lane holds the same mask
                const int src = 2 * (base + __ffs(mask) - 1);
                mask &= mask - 1;
                weight_total = __fadd_rn(weight_total, wb[src]);
                total = __fadd_rn(total, sb[src]);
            }
        }
    }
    // !(ws > 0) as the CPU: zero, negative or NaN score totals fall back to the sizes.
    const bool by_score = weight_total > 0.0f;
    const float* coef = by_score ? wb : sb;
    const float divisor = by_score ? weight_total : total;

    // Pass 2: y = x[own]·c[own] + x[2i]·c[2i] + ... (sources ascending), then y / divisor.
    const float c_own = coef[own];
    for (int c = lane; c < channels; c += WARP_SIZE) y[c] = __fmul_rn(xb[(i64)own * channels + c], c_own);
    if (own & 1) {
        const int j = own >> 1;
        for (int base = 0; base < ta; base += WARP_SIZE) {
            const int i = base + lane;
            unsigned mask = __ballot_sync(FULL_MASK, i < ta && sd[i] == j);
            while (mask != 0) {
                const int src = 2 * (base + __ffs(mask) - 1);
                mask &= mask - 1;
                const float s = coef[src];
                for (int c = lane; c < channels; c += WARP_SIZE)
                    y[c] = __fadd_rn(__fmul_rn(xb[(i64)src * channels + c], s), y[c]);
            }
        }
    }

    for (int c = lane; c < channels; c += WARP_SIZE) y[c] = __fdiv_rn(y[c], divisor);
    if (lane == 0) size_out[w] = total;
}
