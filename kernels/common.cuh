// common.cuh: device helpers shared by every kernel file.
//
// No CUDA toolkit header is included anywhere: NVRTC alone compiles the kernels, on any machine.
// So the half and bfloat16 storage types and their conversions are defined here with inline PTX,
// and the few intrinsics the kernels need come from NVRTC's built-ins.
//
// Inline PTX appears only here, and only through TOME_PTX(twin, asm): NVRTC compiles the asm; the emulated
// CUDA device (emulator/, TOME_EMULATED_DEVICE) calls the twin from emulator/include/tome_ptx_twins.h,
// written from the PTX ISA's definition and checked on random data. A new instruction needs both.
#pragma once

#ifdef TOME_EMULATED_DEVICE
#define TOME_PTX(twin, ...) twin
#else
#define TOME_PTX(twin, ...) __VA_ARGS__
#endif

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;
typedef long long i64;

#define TOME_DEVICE __device__ __forceinline__
#define FULL_MASK 0xffffffffu
#define WARP_SIZE 32

// IEEE binary16 and bfloat16 as raw 16-bit storage; arithmetic is done in fp32.
struct half_t { u16 bits; };
struct bf16_t { u16 bits; };

TOME_DEVICE float as_float(u32 bits) {
    float f;
    TOME_PTX(f = tome_ptx::mov_b32_to_f32(bits), asm("mov.b32 %0, %1;" : "=f"(f) : "r"(bits)));
    return f;
}

TOME_DEVICE u32 as_bits(float f) {
    u32 u;
    TOME_PTX(u = tome_ptx::mov_f32_to_b32(f), asm("mov.b32 %0, %1;" : "=r"(u) : "f"(f)));
    return u;
}

TOME_DEVICE float half_to_float(half_t h) {
    float f;
    TOME_PTX(f = tome_ptx::cvt_f32_f16(h.bits), asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits)));
    return f;
}

TOME_DEVICE half_t float_to_half(float f) {
    half_t h;
    TOME_PTX(h.bits = tome_ptx::cvt_rn_f16_f32(f), asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(f)));
    return h;
}

// bf16 is the top half of an fp32, so widening is a shift on every architecture.
TOME_DEVICE float bf16_to_float(bf16_t b) { return as_float(((u32)b.bits) << 16); }

TOME_DEVICE bf16_t float_to_bf16(float f) {
    bf16_t b;
#if __CUDA_ARCH__ >= 800
    TOME_PTX(b.bits = tome_ptx::cvt_rn_bf16_f32(f), asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b.bits) : "f"(f)));
#else
    // Round to nearest even by hand; NaN stays a quiet NaN instead of rounding into Inf.
    u32 u = as_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        b.bits = (u16)((u >> 16) | 0x0040u);
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
        b.bits = (u16)(u >> 16);
    }
#endif
    return b;
}

// Uniform loads/stores so one kernel body can serve fp32, fp16 and bf16 tensors.
TOME_DEVICE float to_float(float x) { return x; }
TOME_DEVICE float to_float(half_t x) { return half_to_float(x); }
TOME_DEVICE float to_float(bf16_t x) { return bf16_to_float(x); }
template <typename T> TOME_DEVICE T from_float(float x);
template <> TOME_DEVICE float from_float<float>(float x) { return x; }
template <> TOME_DEVICE half_t from_float<half_t>(float x) { return float_to_half(x); }
template <> TOME_DEVICE bf16_t from_float<bf16_t>(float x) { return float_to_bf16(x); }

// Butterfly reductions: every lane ends with the warp-wide result.
TOME_DEVICE float warp_sum(float v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

TOME_DEVICE float warp_max(float v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// Exact GELU as timm's nn.GELU(): x * Φ(x) with the error function, not the tanh approximation.
TOME_DEVICE float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

// -inf without math.h (INFINITY is a toolkit macro): masked attention logits, protected matches.
TOME_DEVICE float neg_infinity() { return __int_as_float(0xff800000); }

TOME_DEVICE i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

TOME_DEVICE bool is_aligned16(const void* p) { return (((u64)p) & 15u) == 0; }
