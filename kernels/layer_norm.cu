// layer_norm.cu: LayerNorm over the channel dimension (timm's nn.LayerNorm, elementwise affine).
//
// Variants:
//   layer_norm_f32   fp32 in, weight, bias and out. One warp per row; the lanes stride over C,
//                    two passes (mean, then mean of squared deviations) so the variance does not
//                    lose precision the way E[x²] − E[x]² does. out may alias in.
//
// Shapes:   in[rows][C], weight[C], bias[C] -> out[rows][C]; rows = batch · tokens.
// Launch:   block = 256 threads (8 warps), grid = ceil(rows / 8), no dynamic shared memory.
// Params:   (in, weight, bias, rows, channels, eps, out)
#include "common.cuh"

extern "C" __global__ void layer_norm_f32(
    const float* __restrict__ in, const float* __restrict__ weight, const float* __restrict__ bias,
    int rows, int channels, float eps,
    float* out)
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

    float squares = 0.0f;
    for (int c = lane; c < channels; c += WARP_SIZE) {
        const float d = x[c] - mean;
        squares += d * d;
    }
    const float rstd = rsqrtf(warp_sum(squares) / channels + eps);

    float* y = out + (i64)row * channels;
    for (int c = lane; c < channels; c += WARP_SIZE)
        y[c] = (x[c] - mean) * rstd * weight[c] + bias[c];
}
