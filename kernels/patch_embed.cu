// patch_embed.cu: the patch embedding around its GEMM. The conv with kernel = stride = P is a GEMM on
// unfolded patches (cuBLAS does it: rows = B·Np, in = 3·P·P, out = C); these kernels build its input
// and turn its output into the first hidden states.
//
// Variants:
//   patch_unfold_f32     rows[b·Np + py·G + px][(ch·P + y)·P + x] = images[b][ch][py·P + y][px·P + x]
//                        (the conv weight's (channel, y, x) order); one thread per output element,
//                        grid-stride, consecutive threads write consecutive x (coalesced both ways).
//   patch_unfold_{f16,bf16}  the same, the pixels rounded to half: the A operand of the tensor-core GEMM.
//   patch_assemble_f32   x[b][t][c] = (t < p ? prefix[t][c] : (emb[b·Np + t − p][c] + bias[c])) + pos[t][c],
//                        the CPU's order of additions (GEMM + bias first, then pos); prefix may be
//                        null when p = 0.
//
// Shapes:   images[B][3][S][S], G = S / P (a remainder of S is ignored, as the conv does), Np = G²;
//           rows[B·Np][3·P·P]; emb[B·Np][C], bias[C], prefix[p][C], pos[T][C] -> x[B][T][C], T = p + Np.
// Launch:   both: block = 256, grid = min(ceil(elements / 256), 65535) (grid-stride, any positive grid).
// Limits:   element counts are 64-bit; none beyond int32 indices for B, T, C.
// Params:   patch_unfold_f32(images, batch, imageSize, patchSize, rows)
//           patch_assemble_f32(emb, bias, prefix, pos, batch, patches, prefixTokens, channels, x)
#include "common.cuh"

template <typename T>
TOME_DEVICE void patch_unfold_body(
    const float* __restrict__ images, int batch, int image_size, int patch_size,
    T* __restrict__ rows)
{
    const int grid = image_size / patch_size;
    const i64 patches = (i64)grid * grid;
    const i64 k = 3LL * patch_size * patch_size;
    const i64 n = (i64)batch * patches * k;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        // i = row·k + (ch·P + y)·P + x, row = b·Np + py·G + px
        const i64 row = i / k;
        const int within = (int)(i - row * k);
        const int ch = within / (patch_size * patch_size);
        const int y = (within / patch_size) % patch_size;
        const int x = within % patch_size;
        const int b = (int)(row / patches);
        const int pi = (int)(row - (i64)b * patches);
        const int py = pi / grid, px = pi % grid;
        rows[i] = from_float<T>(images[(((i64)b * 3 + ch) * image_size + py * patch_size + y) * image_size + px * patch_size + x]);
    }
}

#define PATCH_UNFOLD_ENTRY(NAME, T)                                                                           \
    extern "C" __global__ void patch_unfold_##NAME(const float* __restrict__ images, int batch, int image_size, \
                                                   int patch_size, T* __restrict__ rows)                        \
    {                                                                                                          \
        patch_unfold_body<T>(images, batch, image_size, patch_size, rows);                                     \
    }
PATCH_UNFOLD_ENTRY(f32, float)
PATCH_UNFOLD_ENTRY(f16, half_t)
PATCH_UNFOLD_ENTRY(bf16, bf16_t)

extern "C" __global__ void patch_assemble_f32(
    const float* __restrict__ emb, const float* __restrict__ bias, const float* __restrict__ prefix,
    const float* __restrict__ pos, int batch, int patches, int prefix_tokens, int channels,
    float* __restrict__ x)
{
    const int tokens = prefix_tokens + patches;
    const i64 n = (i64)batch * tokens * channels;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        // i = (b·T + t)·C + c
        const int c = (int)(i % channels);
        const i64 bt = i / channels;
        const int t = (int)(bt % tokens);
        const int b = (int)(bt / tokens);
        float v;
        if (t < prefix_tokens)
            v = prefix[(i64)t * channels + c];
        else
            v = __fadd_rn(emb[((i64)b * patches + (t - prefix_tokens)) * channels + c], bias[c]);
        x[i] = __fadd_rn(v, pos[(i64)t * channels + c]);
    }
}
