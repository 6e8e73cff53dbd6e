// tensor_core_checks.cu: kernels/tensor_core.cuh's helpers on one tile, for the emulated device's tests
// (tests/ToMeEngine.Tests/Cuda/TensorCoreHelperTests.cs). One warp: A[16×16] and B[16×8] (row-major, fp16 or
// bf16) go to shared memory by cp.async, into fragments by ldmatrix (B transposed), and D = A·B + C comes out
// of mma.sync in fp32. `wrong` plants a fragment mistake (1: a[1] and a[2] swapped, 2: b[0] and b[1] swapped,
// 3: D's rows g and g + 8 swapped on the way out), which the tests require to give a wrong product.
#include "tensor_core.cuh"

template <typename T>
TOME_DEVICE void mma_tile(const T* a, const T* b, const float* c, float* d, int wrong)
{
    __align__(16) __shared__ T as[16][16];
    __align__(16) __shared__ T bs[16][8];
    const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    cp_async_16(&as[lane / 2][(lane % 2) * 8], a + lane * 8);   // 32 chunks of 16 bytes
    if (lane < 16)
        cp_async_16(&bs[lane][0], b + lane * 8);
    cp_async_commit();
    cp_async_wait<0>();
    __syncwarp();

    u32 fa[4], fb[2];
    ldmatrix_x4(fa, &as[lane % 16][(lane / 16) * 8]);
    ldmatrix_x2_trans(fb, &bs[lane % 16][0]);   // lanes 16-31's addresses are ignored by .x2
    if (wrong == 1) { u32 x = fa[1]; fa[1] = fa[2]; fa[2] = x; }
    if (wrong == 2) { u32 x = fb[0]; fb[0] = fb[1]; fb[1] = x; }
    float acc[4];
    for (int i = 0; i < 4; ++i)
        acc[i] = c[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1)];
    mma_m16n8k16<T>(acc, fa, fb);
    for (int i = 0; i < 4; ++i) {
        const int row = (g + (i >= 2 ? 8 : 0)) ^ (wrong == 3 ? 8 : 0);
        d[row * 8 + 2 * t + (i & 1)] = acc[i];
    }
}

extern "C" __global__ void mma_tile_f16(const half_t* a, const half_t* b, const float* c, float* d, int wrong) { mma_tile(a, b, c, d, wrong); }
extern "C" __global__ void mma_tile_bf16(const bf16_t* a, const bf16_t* b, const float* c, float* d, int wrong) { mma_tile(a, b, c, d, wrong); }

// ldmatrix .x4.trans of a 16×16 b16 tile: out[lane][i] = register i of lane (the fragments themselves).
extern "C" __global__ void ldmatrix_x4_trans_tile(const u16* m, u32* out)
{
    __align__(16) __shared__ u16 ms[16][16];
    const int lane = threadIdx.x;
    for (int i = 0; i < 8; ++i)
        ms[lane / 2][(lane % 2) * 8 + i] = m[lane * 8 + i];
    __syncwarp();
    u32 r[4];
    ldmatrix_x4_trans(r, &ms[lane % 16][(lane / 16) * 8]);
    for (int i = 0; i < 4; ++i)
        out[lane * 4 + i] = r[i];
}

// Each thread copies 16 bytes by cp.async and reads them back, waiting first (wait = 1) or not (wait = 0).
extern "C" __global__ void cp_async_read_back(const float* in, float* out, int wait)
{
    __align__(16) __shared__ float tile[32][4];
    const int lane = threadIdx.x;
    cp_async_16(&tile[lane][0], in + lane * 4);
    cp_async_commit();
    if (wait)
        cp_async_wait<0>();
    for (int i = 0; i < 4; ++i)
        out[lane * 4 + i] = tile[lane][i];
    cp_async_wait<0>();
}

// mma.sync m8n8k4 (.row A, B .row when b_row, else .col), one warp: quad-pair q multiplies a[q] (8×4, row-major) by
// b[q] (4×8, row-major) and adds c[q] (8×8 fp32); d[q] gets the result. Fragments are read straight from global memory
// by the ISA's tables. `wrong` plants a mistake: 1 a[0] and a[1] swapped, 2 the high half's B fragments taken from the
// low half's columns (or rows), 3 D scattered with the fp16 accumulator's layout (row lane%4 + 4hi, column i).
extern "C" __global__ void mma884_tile(const half_t* a, const half_t* b, const float* c, float* d, int b_row, int wrong)
{
    const int lane = threadIdx.x, q = (lane / 4) % 4, hi = lane / 16;
    const half_t* aq = a + q * 32;
    const half_t* bq = b + q * 32;
    const int row = lane % 4 + 4 * hi, bhi = wrong == 2 ? 0 : hi;
    u32 fa[2], fb[2];
    for (int r = 0; r < 2; ++r) {
        fa[r] = pack2(aq[row * 4 + 2 * r], aq[row * 4 + 2 * r + 1]);
        fb[r] = b_row ? pack2(bq[(lane % 4) * 8 + 4 * bhi + 2 * r], bq[(lane % 4) * 8 + 4 * bhi + 2 * r + 1])
                      : pack2(bq[(2 * r) * 8 + lane % 4 + 4 * bhi], bq[(2 * r + 1) * 8 + lane % 4 + 4 * bhi]);
    }
    if (wrong == 1) { u32 x = fa[0]; fa[0] = fa[1]; fa[1] = x; }
    float acc[8];
    for (int i = 0; i < 8; ++i)
        acc[i] = c[q * 64 + ((lane & 1) + (i & 2) + 4 * hi) * 8 + (i & 4) + (lane & 2) + (i & 1)];
    if (b_row)
        mma_m8n8k4_f16<true>(acc, fa, fb);
    else
        mma_m8n8k4_f16<false>(acc, fa, fb);
    for (int i = 0; i < 8; ++i) {
        const int r = wrong == 3 ? row : (lane & 1) + (i & 2) + 4 * hi, col = wrong == 3 ? i : (i & 4) + (lane & 2) + (i & 1);
        d[q * 64 + r * 8 + col] = acc[i];
    }
}
