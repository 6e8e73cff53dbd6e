// merge_assigned.cu: the size-weighted merge of the kth, random and ToMato strategies (SPEC-merging §3),
// where every token already knows its output slot (dest, from assign_similar.cu or grid_components.cu).
// Deterministic: one warp sums each output slot in ascending token order, as the CPU, with the CPU's
// operations unfused (__fmul_rn/__fadd_rn/__fdiv_rn), so the result is bit-identical to it. No atomics.
//
// Variants:
//   merge_assigned_gather_f32   One warp per output slot (b, j); lanes own channels c = l, l+32, ...:
//                                 y = 0; total = 0
//                                 for t = 0..T−1 with dest[b][t] == j (32 tokens per ballot, set bits in
//                                 ascending order):  y = x[b][t]·size[b][t] + y; total = total + size[b][t]
//                                 x_out[b][j] = total > 0 ? y / total : y;  size_out[b][j] = total
//                               A slot nothing is sent to (ToMato's padding) gets zeros and size 0. Tokens with
//                               dest −1 (dropped) or ≥ T' are in no slot (the CPU rejects ≥ T').
//   merge_assigned_groups_i32   groups_out[b][g] = groups[b][g] < 0 ? −1 : dest[b][groups[b][g]], grid-stride.
//
// Shapes:   x[B][T][C], size[B][T], dest[B][T], groups[B][T0]
//           -> x_out[B][T'][C], size_out[B][T'], groups_out[B][T0].
// Launch:   merge_assigned_gather_f32: grid = ceil(B·T' / 8), block = 256.
//           merge_assigned_groups_i32: grid = min(ceil(B·T0 / 256), 65535), block = 256.
// Limits:   B·T' ≤ 8·(2³¹ − 1) (grid.x); any T, C; groups[b][g] < T (not checked).
// Params:   merge_assigned_gather_f32(x, size, dest, batch, tokens, channels, newTokens, xOut, sizeOut)
//           merge_assigned_groups_i32(groups, dest, batch, tokens, originalTokens, groupsOut)
#include "common.cuh"

extern "C" __global__ void merge_assigned_gather_f32(
    const float* __restrict__ x, const float* __restrict__ size, const int* __restrict__ dest,
    int batch, int tokens, int channels, int new_tokens, float* __restrict__ x_out, float* __restrict__ size_out)
{
    const i64 w = (i64)blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;   // = b·T' + j
    const int lane = threadIdx.x % WARP_SIZE;
    if (w >= (i64)batch * new_tokens) return;   // whole warps only
    const int b = (int)(w / new_tokens), j = (int)(w - (i64)b * new_tokens);
    const float* xb = x + (i64)b * tokens * channels;
    const float* sb = size + (i64)b * tokens;
    const int* db = dest + (i64)b * tokens;
    float* y = x_out + w * channels;

    for (int c = lane; c < channels; c += WARP_SIZE) y[c] = 0.0f;
    float total = 0.0f;
    for (int base = 0; base < tokens; base += WARP_SIZE) {
        const int t = base + lane;
        unsigned mask = __ballot_sync(FULL_MASK, t < tokens && db[t] == j);
        while (mask != 0) {   // uniform: every lane holds the same mask
            const int src = base + __ffs(mask) - 1;
            mask &= mask - 1;
            const float s = sb[src];
            for (int c = lane; c < channels; c += WARP_SIZE)
                y[c] = __fadd_rn(__fmul_rn(xb[(i64)src * channels + c], s), y[c]);
            total = __fadd_rn(total, s);
        }
    }

    if (total > 0.0f)
        for (int c = lane; c < channels; c += WARP_SIZE) y[c] = __fdiv_rn(y[c], total);
    if (lane == 0) size_out[w] = total;
}

extern "C" __global__ void merge_assigned_groups_i32(
    const int* __restrict__ groups, const int* __restrict__ dest, int batch, int tokens, int original_tokens,
    int* __restrict__ groups_out)
{
    const i64 n = (i64)batch * original_tokens;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const i64 b = i / original_tokens;
        const int current = groups[i];   // the token holding original token g, −1 once dropped
        groups_out[i] = current < 0 ? -1 : dest[b * tokens + current];
    }
}
