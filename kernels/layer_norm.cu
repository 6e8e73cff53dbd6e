// layer_norm.cu: LayerNorm over the channel dimension (timm's nn.LayerNorm, elementwise affine).
//
// Variants:
//   layer_norm_f32   fp32 in, weight, bias and out. One warp per row; the lanes stride over C. The CPU
//                    twin's numerics (RowOps.LayerNorm): the mean, then the mean of the centred values
//                    (the fp32 mean's own rounding, large when the row sits on a common offset such as
//                    1e4), then the variance of the twice-centred values, so neither E[x²] − E[x]²
//                    cancellation nor the mean's rounding reaches the output. out may alias in (the
//                    forward normalizes in place), so in is not __restrict__: each element is read and
//                    written by the same lane, reads first.
//   layer_norm_{f16,bf16}  the same statistics and arithmetic in fp32 on fp32 input (the residual
//                    stream), the output rounded once to half: the operand of the next half GEMM.
//                    out must not alias in (another type).
//
// Shapes:   in[rows][C], weight[C], bias[C] -> out[rows][C]; rows = batch · tokens.
// Launch:   block = 256 threads (8 warps), grid = ceil(rows / 8), no dynamic shared memory.
// Params:   (in, weight, bias, rows, channels, eps, out); out is float, half_t or bf16_t.
#include "common.cuh"

template <typename T>
TOME_DEVICE void layer_norm_body(
    const float* in, const float* __restrict__ weight, const float* __restrict__ bias,
    int rows, int channels, float eps,
    T* out)
{
    const int warps_per_block = blockDim.x / WARP_SIZE;
    const int row = blockIdx.x * warps_per_block + threadIdx.x / WARP_SIZE;
    const int lane = threadIdx.x % WARP_SIZE;
    if (row >= rows) return;

    // x[c] = in[row][c]
    const float* x = in + (i64)row * channels;
    float sum = 0.0f;
    for (int c = lane; c < channels; c += WARP_SIZE) sum += x[c];
    const float mean = warp_sum(sum) / channels;

    float residual = 0.0f;
    for (int c = lane; c < channels; c += WARP_SIZE) residual += x[c] - mean;
    const float shift = warp_sum(residual) / channels;

    float squares = 0.0f;
    for (int c = lane; c < channels; c += WARP_SIZE) {
        const float d = (x[c] - mean) - shift;
        squares += d * d;
    }
    const float rstd = rsqrtf(warp_sum(squares) / channels + eps);

    T* y = out + (i64)row * channels;
    for (int c = lane; c < channels; c += WARP_SIZE)
        y[c] = from_float<T>(((x[c] - mean) - shift) * rstd * weight[c] + bias[c]);
}

#define LAYER_NORM_ENTRY(NAME, T)                                                                              \
    extern "C" __global__ void layer_norm_##NAME(const float* in, const float* __restrict__ weight,            \
                                                 const float* __restrict__ bias, int rows, int channels,       \
                                                 float eps, T* out)                                            \
    {                                                                                                          \
        layer_norm_body<T>(in, weight, bias, rows, channels, eps, out);                                        \
    }
LAYER_NORM_ENTRY(f32, float)
LAYER_NORM_ENTRY(f16, half_t)
LAYER_NORM_ENTRY(bf16, bf16_t)
