// residual_add.cu: elementwise sum of two fp32 tensors (the residual connections).
//
// Variants:
//   residual_add_f32   out[i] = a[i] + b[i] for i < n. Grid-stride loop; 16-byte float4 loads and
//                      stores when all three pointers are 16-byte aligned, scalar tail otherwise.
//                      out may alias a or b (x += residual in place).
//
// Shapes:   a[n], b[n] -> out[n], n = batch · tokens · C (any n, including tails).
// Launch:   block = 256, grid = min(ceil(n / 4 / 256), 4 · SMs) or any positive grid.
// Params:   (a, b, n, out)
#include "common.cuh"

extern "C" __global__ void residual_add_f32(const float* a, const float* b, i64 n, float* out)
{
    const i64 stride = (i64)gridDim.x * blockDim.x;
    const i64 first = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 done = 0;
    if (is_aligned16(a) && is_aligned16(b) && is_aligned16(out)) {
        const i64 quads = n / 4;
        for (i64 q = first; q < quads; q += stride) {
            const float4 x = reinterpret_cast<const float4*>(a)[q];
            const float4 y = reinterpret_cast<const float4*>(b)[q];
            reinterpret_cast<float4*>(out)[q] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
        }
        done = quads * 4;
    }
    for (i64 i = done + first; i < n; i += stride) out[i] = a[i] + b[i];
}
