// topr_sort.cu: ToMe's ranking of set-A tokens by their best match (SPEC-merging §2): the order in which
// they merge. A total order, so the result is the CPU's exactly: best descending, lower index first on
// ties, NaN after every number (C#'s float.CompareTo). Then, when keepUnmergedInOrder (a class token),
// the unmerged tail [r, ta) is re-sorted ascending by index.
//
// Variants:
//   topr_sort_f32   One block per image. (value, index) pairs in shared memory, padded to the next power
//                   of two n with entries of index ≥ ta that rank after every real one; a bitonic network
//                   (log n (log n + 1) / 2 stages, a barrier after each). The tail re-sort is a second
//                   bitonic pass on integer keys (position p < r keeps key p, the rest get r + index;
//                   all keys distinct and < 2^24, so exact as floats).
//
// Shapes:   best[B][ta] (fp32) -> order[B][ta] (int32, set-A indices).
// Launch:   grid = B, block = 512, static smem 32 KiB.
// Limits:   ta ≤ 4096 (T ≤ 8192 tokens); 0 ≤ r ≤ ta.
// Params:   (best, setA, r, keepUnmergedInOrder, order)
#include "common.cuh"

#define TOPR_MAX 4096

// Sorts (val, idx)[0, n) so that before(a, b) holds for every earlier a, later b; n is a power of two.
template <typename Before>
TOME_DEVICE void bitonic_sort(int n, float* val, int* idx, Before before)
{
    for (int k = 2; k <= n; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int t = threadIdx.x; t < n; t += blockDim.x) {
                const int partner = t ^ j;
                if (partner <= t) continue;   // each pair is handled once, by its lower position
                // In the first half of each k-block the earlier-ranking element goes to t; in the second, to partner.
                const bool forward = (t & k) == 0;
                const bool swap = forward ? before(val[partner], idx[partner], val[t], idx[t])
                                          : before(val[t], idx[t], val[partner], idx[partner]);
                if (swap) {
                    const float v = val[t]; val[t] = val[partner]; val[partner] = v;
                    const int i = idx[t]; idx[t] = idx[partner]; idx[partner] = i;
                }
            }
            __syncthreads();
        }
    }
}

extern "C" __global__ void __launch_bounds__(512) topr_sort_f32(
    const float* __restrict__ best, int set_a, int r, int keep_unmerged_in_order, int* __restrict__ order)
{
    __shared__ float val[TOPR_MAX];
    __shared__ int idx[TOPR_MAX];
    const int b = blockIdx.x;
    int n = 1;
    while (n < set_a) n <<= 1;

    for (int p = threadIdx.x; p < n; p += blockDim.x) {
        idx[p] = p;
        val[p] = p < set_a ? best[(i64)b * set_a + p] : neg_infinity();
    }
    __syncthreads();

    bitonic_sort(n, val, idx, [set_a](float va, int ia, float vb, int ib) {
        if (ia >= set_a || ib >= set_a) return ia < ib;   // padding ranks last
        const bool a_nan = va != va, b_nan = vb != vb;
        if (a_nan != b_nan) return b_nan;
        if (!a_nan && va != vb) return va > vb;
        return ia < ib;
    });

    if (keep_unmerged_in_order) {
        for (int p = threadIdx.x; p < n; p += blockDim.x)
            val[p] = (float)(p < r ? p : r + idx[p]);
        __syncthreads();
        bitonic_sort(n, val, idx, [](float ka, int, float kb, int) { return ka < kb; });
    }

    for (int p = threadIdx.x; p < set_a; p += blockDim.x)
        order[(i64)b * set_a + p] = idx[p];
}
