// emulator_checks.cu: small kernels that each break (or keep) one rule of the CUDA execution model, for the
// emulated device's own tests (tests/ToMeEngine.Tests/Cuda/EmulatorExecutionTests.cs). Compiled by NVRTC like the
// engine's kernels (the CUBIN the emulator loads) and by the emulator's build (the code it runs).
#include "common.cuh"

// out[i] = in[(i + 1) % n] through shared memory; `barrier` says whether the threads wait for each other.
extern "C" __global__ void neighbour_through_shared(const float* in, float* out, int barrier)
{
    __shared__ float tile[1024];
    const int i = threadIdx.x, n = blockDim.x;
    tile[i] = in[i];
    if (barrier)
        __syncthreads();
    out[i] = tile[(i + 1) % n];
}

// out[i] = the position at which thread i ran among the block's threads (run order made visible).
extern "C" __global__ void run_order(int* out)
{
    __shared__ int next;
    if (threadIdx.x == 0)
        next = 0;
    __syncthreads();
    out[threadIdx.x] = next++;   // fibers run one at a time between synchronizations
}

// A barrier only the first warp reaches; the others exit.
extern "C" __global__ void barrier_in_divergent_code(float* out)
{
    if (threadIdx.x < 32)
        __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// Odd and even threads wait at two different barriers.
extern "C" __global__ void two_different_barriers(float* out)
{
    if (threadIdx.x % 2 != 0) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}

// The butterfly sum of warp_sum with a half-warp mask, called by the whole warp.
extern "C" __global__ void shuffle_partial_mask(const float* in, float* out)
{
    float v = in[threadIdx.x];
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0x0000ffffu, v, offset);
    out[threadIdx.x] = v;
}

// Lanes 16-31 return early; lanes 0-15 then shuffle with the full mask.
extern "C" __global__ void shuffle_after_exit(float* out)
{
    if (threadIdx.x % 32 >= 16)
        return;
    out[threadIdx.x] = __shfl_sync(FULL_MASK, 1.0f, 0);
}

// warp_sum in every warp; launched with a block that is not a multiple of 32, the last warp is partial.
extern "C" __global__ void full_mask_in_partial_warp(const float* in, float* out)
{
    out[threadIdx.x] = warp_sum(in[threadIdx.x]);
}

// Half the warp shuffles while the other half votes: the lanes disagree on the collective.
extern "C" __global__ void lanes_disagree(float* out)
{
    float v;
    if (threadIdx.x % 32 < 16)
        v = __shfl_xor_sync(FULL_MASK, 1.0f, 1);
    else
        v = (float)__ballot_sync(FULL_MASK, 1);
    out[threadIdx.x] = v;
}

// Lane 0 waits at a barrier while lanes 1-31 wait in a shuffle that needs lane 0.
extern "C" __global__ void deadlock(float* out)
{
    float v = 1.0f;
    if (threadIdx.x == 0)
        __syncthreads();
    v = __shfl_sync(FULL_MASK, v, 0);
    if (threadIdx.x != 0)
        __syncthreads();
    out[threadIdx.x] = v;
}

// Reads shared memory nobody wrote.
extern "C" __global__ void uninitialized_shared(unsigned int* out)
{
    __shared__ unsigned int scratch[256];
    out[threadIdx.x] = scratch[threadIdx.x];
}

// Writes dynamic shared memory at [offset, offset + blockDim.x).
extern "C" __global__ void dynamic_shared_write(float* out, int offset)
{
    extern __shared__ float dynamic[];
    dynamic[offset + threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = dynamic[offset + threadIdx.x];
}

// out[i] = in[i + shift] for i < n: a shift past the end reads what is not the array's.
extern "C" __global__ void copy_shifted(const float* in, float* out, int n, int shift)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = in[i + shift];
}

// Writes `count` floats from `out`, whatever the allocation holds.
extern "C" __global__ void write_count(float* out, int count)
{
    for (int i = threadIdx.x; i < count; i += blockDim.x)
        out[i] = 2.0f;
}

extern "C" __global__ void trap_when_negative(int value)
{
    if (value < 0)
        __trap();
}

// 40 KiB of static shared memory: with more than 8 KiB of dynamic shared memory it needs the opt-in attribute.
extern "C" __global__ void large_static_shared(float* out)
{
    __shared__ float big[10 * 1024];
    big[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = big[threadIdx.x];
}

extern "C" __global__ void __launch_bounds__(64) bounded_to_64(float* out)
{
    out[threadIdx.x] = 3.0f;
}

// A grid-stride add, for ordering between streams: data[i] += 1.
extern "C" __global__ void increment(float* data, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        data[i] += 1.0f;
}
