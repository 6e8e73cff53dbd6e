// bias_gelu.cu: adds the fc1 bias and applies exact (erf) GELU in place, the MLP's middle step
// when the GEMM runs without an epilogue.
//
// Variants:
//   bias_gelu_f32   x[r][c] = gelu_erf(x[r][c] + bias[c]), fp32, grid-stride over rows · C.
//
// Shapes:   bias[C], x[rows][C] (in place); rows = batch · tokens, C = MLP hidden size.
// Launch:   block = 256, grid = min(ceil(rows · C / 256), 4 · SMs) or any positive grid.
// Params:   (bias, rows, channels, x)
#include "common.cuh"

extern "C" __global__ void bias_gelu_f32(const float* __restrict__ bias, int rows, int channels, float* x)
{
    const i64 n = (i64)rows * channels;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        x[i] = gelu_erf(x[i] + bias[i % channels]);
}
