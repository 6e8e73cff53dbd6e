// grid_components.cu: ToMato's merge-at-once grouping (SPEC-merging §3): the connected components of the
// patch grid, where two 4-neighbour patches are joined when the cosine similarity of their metrics is
// > threshold. Deterministic by construction: the answer (every patch labelled with the smallest patch
// index of its component, components numbered in increasing order of that index) depends only on the
// edge set, whatever order the propagation runs in. No atomics.
//
// Variants:
//   grid_components_f32   One block of 1024 threads per image, everything in shared memory:
//     1. edges:  edge[i] bit 0: cos(patch i, patch i+1) > threshold (x + 1 < W), bit 1: cos(patch i,
//                patch i+W) > threshold (y + 1 < H), on the L2-normalized metric (l2_normalize_rows_f32:
//                zero rows give similarity 0; NaN never passes). Patch i = (y, x) = (i / W, i % W) is
//                token prefix + i. label[i] = i.
//     2. labels: min-label propagation with pointer jumping, Jacobi style (all reads, barrier, all writes):
//                  label'[i] = min(label[i], label[label[i]], label[n] for every neighbour n joined to i)
//                until an iteration changes nothing (__syncthreads_or). Invariant: label[i] is a patch of
//                i's component and ≤ i; so the fixpoint is constant on each component and equals its
//                smallest index m (label[m] ≤ m and is in the component, so label[m] = m).
//                Iterations ≤ the longest shortest path inside a component + 1 (≤ H·W).
//     3. numbers: thread k owns patches 4k..4k+3; roots (label[i] == i) are counted per thread, a block-wide
//                exclusive scan (warp shuffles, then the 32 warp totals) gives each root its number =
//                how many roots have a smaller index. Then
//                  dest[b][t] = t for t < prefix;  dest[b][prefix + i] = prefix + number[label[i]]
//                  counts[b] = prefix + number of roots.
//
// Shapes:   normed[B][T][D] with T = prefix + H·W (patches row-major) -> dest[B][T], counts[B] (int32).
// Launch:   grid = B, block = 1024 (required: the patch ownership and the scan assume it), static smem
//           (2·4096·4 + 4096 + 32·4) bytes = 36.1 KiB.
// Limits:   H·W ≤ 4096 (a 64×64 grid; any shape); any D, prefix; B ≤ 2³¹ − 1.
// Params:   grid_components_f32(normed, tokens, dim, prefixTokens, gridHeight, gridWidth, threshold, dest, counts)
#include "common.cuh"

#define GC_THREADS 1024
#define GC_NODES_PER_THREAD 4
#define GC_MAX_PATCHES (GC_THREADS * GC_NODES_PER_THREAD)
#define GC_RIGHT 1
#define GC_DOWN 2

TOME_DEVICE float gc_dot(const float* __restrict__ a, const float* __restrict__ b, int dim)
{
    float dot = 0.0f;
    for (int d = 0; d < dim; ++d) dot += a[d] * b[d];
    return dot;
}

extern "C" __global__ void __launch_bounds__(GC_THREADS) grid_components_f32(
    const float* __restrict__ normed, int tokens, int dim, int prefix, int grid_h, int grid_w, float threshold,
    int* __restrict__ dest, int* __restrict__ counts)
{
    __shared__ int label[GC_MAX_PATCHES];    // label[i]: a patch of i's component, ≤ i
    __shared__ int number[GC_MAX_PATCHES];   // number[root]: the root's component number
    __shared__ u8 edge[GC_MAX_PATCHES];      // GC_RIGHT: i—i+1 joined, GC_DOWN: i—i+W joined
    __shared__ int warp_total[GC_THREADS / WARP_SIZE];

    const int b = blockIdx.x, tid = threadIdx.x, lane = tid % WARP_SIZE, warp = tid / WARP_SIZE;
    const int patches = grid_h * grid_w;
    const float* m = normed + ((i64)b * tokens + prefix) * dim;   // patch i: m[i·D + d]
    int* db = dest + (i64)b * tokens;

    // 1. Edges (each patch scores its right and lower neighbour) and the initial labels.
    for (int i = tid; i < patches; i += GC_THREADS) {
        const int y = i / grid_w, x = i - y * grid_w;
        const float* a = m + (i64)i * dim;
        int e = 0;
        if (x + 1 < grid_w && gc_dot(a, a + dim, dim) > threshold) e |= GC_RIGHT;
        if (y + 1 < grid_h && gc_dot(a, a + (i64)grid_w * dim, dim) > threshold) e |= GC_DOWN;
        edge[i] = (u8)e;
        label[i] = i;
    }
    for (int t = tid; t < prefix; t += GC_THREADS) db[t] = t;
    __syncthreads();

    // 2. Propagate the smallest label; thread tid owns patches first .. first + 3.
    const int first = tid * GC_NODES_PER_THREAD;
    int changed;
    do {
        int next[GC_NODES_PER_THREAD];
#pragma unroll
        for (int k = 0; k < GC_NODES_PER_THREAD; ++k) {
            const int i = first + k;
            next[k] = 0;
            if (i >= patches) continue;
            const int x = i % grid_w;
            int l = label[i];
            l = min(l, label[l]);   // pointer jumping: label[l] is in the component too
            if (x > 0 && (edge[i - 1] & GC_RIGHT)) l = min(l, label[i - 1]);
            if ((edge[i] & GC_RIGHT)) l = min(l, label[i + 1]);
            if (i >= grid_w && (edge[i - grid_w] & GC_DOWN)) l = min(l, label[i - grid_w]);
            if ((edge[i] & GC_DOWN)) l = min(l, label[i + grid_w]);
            next[k] = l;
        }
        __syncthreads();   // every read of this round is done before any write
        changed = 0;
#pragma unroll
        for (int k = 0; k < GC_NODES_PER_THREAD; ++k) {
            const int i = first + k;
            if (i < patches && next[k] != label[i]) {
                label[i] = next[k];
                changed = 1;
            }
        }
    } while (__syncthreads_or(changed));   // also the barrier before the next round's reads

    // 3. Number the roots in index order: exclusive scan of the per-thread root counts.
    int roots = 0;
#pragma unroll
    for (int k = 0; k < GC_NODES_PER_THREAD; ++k) {
        const int i = first + k;
        roots += i < patches && label[i] == i;
    }
    int inclusive = roots;
    for (int offset = 1; offset < WARP_SIZE; offset <<= 1) {
        const int v = __shfl_up_sync(FULL_MASK, inclusive, offset);
        if (lane >= offset) inclusive += v;
    }
    if (lane == WARP_SIZE - 1) warp_total[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        int total = warp_total[lane];   // GC_THREADS / WARP_SIZE == 32 warps: one per lane
        for (int offset = 1; offset < WARP_SIZE; offset <<= 1) {
            const int v = __shfl_up_sync(FULL_MASK, total, offset);
            if (lane >= offset) total += v;
        }
        warp_total[lane] = total;   // now inclusive over warps
    }
    __syncthreads();
    int running = (warp > 0 ? warp_total[warp - 1] : 0) + inclusive - roots;   // roots before patch `first`
#pragma unroll
    for (int k = 0; k < GC_NODES_PER_THREAD; ++k) {
        const int i = first + k;
        if (i < patches && label[i] == i) number[i] = running++;
    }
    __syncthreads();

#pragma unroll
    for (int k = 0; k < GC_NODES_PER_THREAD; ++k) {
        const int i = first + k;
        if (i < patches) db[prefix + i] = prefix + number[label[i]];
    }
    if (tid == 0) counts[b] = prefix + warp_total[GC_THREADS / WARP_SIZE - 1];
}
