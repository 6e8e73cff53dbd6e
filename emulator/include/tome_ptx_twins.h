// tome_ptx_twins.h: the emulated twin of every inline-PTX instruction kernels/common.cuh uses, written from
// the PTX ISA's definition of the instruction (not from what a host compiler happens to do), and checked
// on random data against independent oracles by the emulator's self-test (tests/ptx_twin_tests.cpp).
//
// Scalar instructions are pure functions here. Warp-wide instructions (mma.sync, ldmatrix, cp.async groups)
// are warp collectives: the twin deposits the lane's fragment registers with tome_emu_warp_collective, and
// the WarpOp's combine rebuilds the matrices from the ISA's fragment layout (which lane holds which
// element), computes, and scatters the result fragments back, so a wrong layout in a kernel shows up as a
// wrong product and a lane missing from the mask as an error.
#pragma once
#include <stdint.h>
#include <string.h>

namespace tome_ptx {

// mov.b32: a bit-for-bit move between a .f32 and a .b32 register.
inline float mov_b32_to_f32(uint32_t bits) { float f; memcpy(&f, &bits, 4); return f; }
inline uint32_t mov_f32_to_b32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// cvt.f32.f16: every binary16 value is exactly representable in binary32; a NaN stays a NaN (quiet).
inline float cvt_f32_f16(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13) | (mantissa != 0 ? 0x00400000u : 0u);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        // Subnormal: value = mantissa · 2^-24; normalize into binary32.
        int e = -1;
        do { mantissa <<= 1; ++e; } while ((mantissa & 0x400u) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mantissa & 0x3ffu) << 13);
    }
    return mov_b32_to_f32(bits);
}

// Round-to-nearest-even of a magnitude `value`, scaled so one unit of the result's last place is 2^shift
// of `value`'s units: the .rn rounding shared by the narrowing conversions below.
inline uint32_t round_shift_rne(uint32_t value, int shift)
{
    if (shift <= 0)
        return value << -shift;
    if (shift >= 32)
        return 0;
    const uint32_t kept = value >> shift;
    const uint32_t rest = value & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

// cvt.rn.f16.f32: round to nearest, ties to even; magnitudes from 65520 up become infinity; results below
// the smallest normal are binary16 subnormals (no .ftz); NaN becomes the canonical NaN 0x7fff.
inline uint16_t cvt_rn_f16_f32(float f)
{
    const uint32_t x = mov_f32_to_b32(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t magnitude = x & 0x7fffffffu;
    if (magnitude > 0x7f800000u)
        return 0x7fff;
    if (magnitude >= 0x477ff000u)   // ≥ 65520 = halfway between 65504 and 65536 (even: infinity)
        return (uint16_t)(sign | 0x7c00u);
    const int exponent = (int)(magnitude >> 23);   // biased binary32 exponent
    if (exponent >= 113) {
        // Normal binary16: rebias 127 -> 15 and round the 23-bit mantissa to 10 bits; a carry into the
        // exponent is the correct next binade.
        const uint32_t rebased = ((uint32_t)(exponent - 112) << 23) | (magnitude & 0x7fffffu);
        return (uint16_t)(sign | round_shift_rne(rebased, 13));
    }
    if (exponent == 0)
        return sign;   // binary32 subnormals are far below half the smallest binary16 subnormal
    // Subnormal binary16: units of 2^-24. value = m · 2^(exponent - 150), m with its implicit bit.
    const uint32_t m = (magnitude & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | round_shift_rne(m, 126 - exponent));
}

// cvt.rn.bf16.f32 (sm_80+): keep the top 16 bits, rounding the low 16 to nearest even (a carry may reach
// infinity, which is the correctly rounded result); NaN becomes the canonical NaN 0x7fff.
inline uint16_t cvt_rn_bf16_f32(float f)
{
    const uint32_t x = mov_f32_to_b32(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return 0x7fff;
    const uint32_t sign = x & 0x80000000u;
    return (uint16_t)((sign | round_shift_rne(x & 0x7fffffffu, 16) << 16) >> 16);
}

// cvt.rna.tf32.f32: keep 10 mantissa bits, rounding to nearest with ties away from zero (.rna); a carry
// into the exponent is the next binade (or infinity). Infinities pass through; a NaN stays a quiet NaN.
// The result is a .b32 whose low 13 bits are zero, as TF32 occupies a 32-bit register.
inline float cvt_rna_tf32_f32(float f)
{
    const uint32_t x = mov_f32_to_b32(f);
    if ((x & 0x7f800000u) != 0x7f800000u)
        return mov_b32_to_f32((x + 0x1000u) & 0xffffe000u);
    if ((x & 0x7fffffu) != 0)
        return mov_b32_to_f32((x | 0x400000u) & 0xffffe000u);
    return f;
}

}  // namespace tome_ptx
