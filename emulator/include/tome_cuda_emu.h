// tome_cuda_emu.h: the CUDA C++ dialect of kernels/*.cu as plain C++17, for the emulated device.
//
// Force-included (-include) before a kernel file, which is compiled unmodified. What changes meaning:
//   __shared__           thread_local: one host thread runs one block at a time, so the kernel library's
//                        thread-local block is that block's shared memory (poisoned at every block start).
//   threadIdx, blockIdx  read from the running fiber (tome_emu::self()).
//   __syncthreads*, __syncwarp, __shfl*_sync, __ballot/__any/__all_sync
//                        rendezvous of the participating threads in the driver, which checks that they agree.
//   inline PTX           kernels/common.cuh routes each asm helper to its twin in tome_ptx_twins.h.
// Floating point follows the host: libm (not CUDA's), FMA contraction where the compiler chooses (as NVRTC's
// default --fmad=true), and the _rn intrinsics are opaque so they are never contracted.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tome_emu_abi.h"

#define TOME_EMULATED_DEVICE 1
#ifndef __CUDA_ARCH__
#define __CUDA_ARCH__ 900
#endif

#ifdef TOME_EMU_SCAN   // tools/gen_kernel_library.sh preprocesses with markers to find kernels and dynamic shared memory
#define __global__ __tome_global__
#define __shared__ __tome_shared__
#else
#define __global__ __attribute__((visibility("default")))
// `used`: the compiler must not fold reads of shared memory no thread writes to their zero initializer; the
// emulator poisons it (on an extern declaration the attribute is moot; -Wno-attributes keeps that quiet).
#define __shared__ thread_local __attribute__((used))
#endif
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __constant__ static const
#define __align__(n) alignas(n)

// ---- thread hierarchy -------------------------------------------------------------------------------
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
    constexpr dim3() = default;
    constexpr dim3(unsigned int x_, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef tome_emu::Dim3 uint3;

#define threadIdx (tome_emu::self()->thread_idx)
#define blockIdx (tome_emu::self()->block_idx)
#define blockDim (tome_emu::self()->block_dim)
#define gridDim (tome_emu::self()->grid_dim)
static constexpr int warpSize = 32;

// ---- vector types -----------------------------------------------------------------------------------
#define TOME_EMU_VEC2(T, name, align) struct alignas(align) name { T x, y; };                   \
    inline name make_##name(T x, T y) { return name{x, y}; }
#define TOME_EMU_VEC4(T, name, align) struct alignas(align) name { T x, y, z, w; };             \
    inline name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }
TOME_EMU_VEC2(float, float2, 8)
TOME_EMU_VEC4(float, float4, 16)
TOME_EMU_VEC2(int, int2, 8)
TOME_EMU_VEC4(int, int4, 16)
TOME_EMU_VEC2(unsigned int, uint2, 8)
TOME_EMU_VEC4(unsigned int, uint4, 16)
TOME_EMU_VEC2(double, double2, 16)
struct float3 { float x, y, z; };
inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }

// ---- arithmetic intrinsics --------------------------------------------------------------------------
// The explicitly rounded operations must not be fused with their neighbours: an empty asm hides the value.
#define TOME_EMU_OPAQUE(v) __asm__("" : "+x"(v))
inline float __fadd_rn(float a, float b) { float r = a + b; TOME_EMU_OPAQUE(r); return r; }
inline float __fsub_rn(float a, float b) { float r = a - b; TOME_EMU_OPAQUE(r); return r; }
inline float __fmul_rn(float a, float b) { float r = a * b; TOME_EMU_OPAQUE(r); return r; }
inline float __fdiv_rn(float a, float b) { float r = a / b; TOME_EMU_OPAQUE(r); return r; }
inline float __frcp_rn(float a) { float r = 1.0f / a; TOME_EMU_OPAQUE(r); return r; }
inline float __fsqrt_rn(float a) { float r = sqrtf(a); TOME_EMU_OPAQUE(r); return r; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { double r = a + b; TOME_EMU_OPAQUE(r); return r; }
inline double __dmul_rn(double a, double b) { double r = a * b; TOME_EMU_OPAQUE(r); return r; }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
inline float __expf(float a) { return expf(a); }
inline float __logf(float a) { return logf(a); }
inline float __sinf(float a) { return sinf(a); }
inline float __cosf(float a) { return cosf(a); }
inline float __saturatef(float a) { return a != a ? 0.0f : (a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : a)); }

inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned int i) { float f; memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline unsigned int __float_as_uint(float f) { unsigned int i; memcpy(&i, &f, 4); return i; }
inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
inline int __float2int_rn(float f) { return (int)rintf(f); }
inline int __float2int_rz(float f) { return (int)f; }

inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned int)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline unsigned int __brev(unsigned int x) { x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2); x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8); return (x >> 16) | (x << 16); }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

template <typename T> inline T __ldg(const T* p) { return *p; }

// ---- atomics (blocks run concurrently on several host threads) ----------------------------------------
template <typename T> inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline float atomicAdd(float* p, float v) {
    float expected = *p, desired;
    do { desired = expected + v; } while (!__atomic_compare_exchange(p, &expected, &desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return expected;
}
template <typename T> inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T atomicCAS(T* p, T expected, T desired) {
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return expected;
}
template <typename T> inline T atomicMax(T* p, T v) {
    T old = *p;
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
template <typename T> inline T atomicMin(T* p, T v) {
    T old = *p;
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- synchronization ----------------------------------------------------------------------------------
inline void __syncthreads(TOME_EMU_SITE) { tome_emu_barrier(tome_emu::kBarrierSync, 0, file, line); }
inline int __syncthreads_or(int p, TOME_EMU_SITE) { return tome_emu_barrier(tome_emu::kBarrierOr, p != 0, file, line); }
inline int __syncthreads_and(int p, TOME_EMU_SITE) { return tome_emu_barrier(tome_emu::kBarrierAnd, p != 0, file, line); }
inline int __syncthreads_count(int p, TOME_EMU_SITE) { return tome_emu_barrier(tome_emu::kBarrierCount, p != 0, file, line); }
TOME_EMU_NORETURN inline void __trap(TOME_EMU_SITE) { tome_emu_trap("__trap()", file, line); }
#define assert(e) ((e) ? (void)0 : tome_emu_trap("assertion failed: " #e, __FILE__, __LINE__))

#include "tome_emu_warp.h"
#include "tome_ptx_twins.h"
