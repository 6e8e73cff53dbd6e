// ptx_twin_tests.cpp: every PTX twin in tome_ptx_twins.h against an oracle that does not share its method,
// on random data and on the edges (halfway points, overflow, subnormals, zeros, infinities, NaN).
//
// The oracles compute in double: a narrowing conversion is "the representable value nearest to x, ties to
// the even code (or away from zero for .rna), infinity standing for the next value past the largest".
// Where the CPU has F16C, cvt.rn.f16.f32 is also compared with the hardware's conversion.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "tome_ptx_twins.h"

namespace {

int failures = 0;

void Expect(bool ok, const char* what, uint32_t input, uint32_t got, uint32_t expected)
{
    if (ok)
        return;
    if (++failures <= 20)
        std::printf("FAIL %s: input 0x%08x gave 0x%x, expected 0x%x\n", what, input, got, expected);
}

float AsFloat(uint32_t bits) { float f; std::memcpy(&f, &bits, 4); return f; }
uint32_t AsBits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// The value of a binary16 code, by the format's definition; 0x7c00 counts as 65536 (the next value past 65504).
double HalfValue(uint16_t h)
{
    const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : exponent == 31 ? 65536.0 : std::ldexp(1024 + mantissa, exponent - 25);
    return (h & 0x8000) ? -magnitude : magnitude;
}

// Nearest of two candidate codes `low` < `high` (by magnitude) to |x|; ties to the even code, or away from zero.
template <typename Code>
Code Nearest(double magnitude, Code low, Code high, double low_value, double high_value, bool ties_away)
{
    const double below = magnitude - low_value, above = high_value - magnitude;
    if (below < above)
        return low;
    if (above < below)
        return high;
    return ties_away ? high : ((low & 1) == 0 ? low : high);
}

uint16_t OracleF16(float x)
{
    const double magnitude = std::fabs((double)x);
    uint16_t low = 0;
    // The largest code whose value is ≤ |x| (codes grow with value), by bisection over 0..0x7c00.
    uint16_t lo = 0, hi = 0x7c00;
    while (lo < hi) {
        const uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (HalfValue(mid) <= magnitude)
            lo = mid;
        else
            hi = (uint16_t)(mid - 1);
    }
    low = lo;
    const uint16_t code = low == 0x7c00 ? low : Nearest<uint16_t>(magnitude, low, (uint16_t)(low + 1), HalfValue(low), HalfValue((uint16_t)(low + 1)), false);
    return (uint16_t)(code | (std::signbit(x) ? 0x8000 : 0));
}

uint16_t OracleBf16(float x)
{
    const uint32_t bits = AsBits(x);
    if (std::isinf(x))
        return (uint16_t)(bits >> 16);
    const uint16_t low = (uint16_t)((bits & 0x7fffffffu) >> 16);
    auto value = [](uint16_t code) { return code >= 0x7f80 ? std::ldexp(1.0, 128) : (double)AsFloat((uint32_t)code << 16); };
    const uint16_t code = Nearest<uint16_t>(std::fabs((double)x), low, (uint16_t)(low + 1), value(low), value((uint16_t)(low + 1)), false);
    return (uint16_t)(code | ((bits >> 16) & 0x8000u));
}

uint32_t OracleTf32(float x)
{
    const uint32_t bits = AsBits(x);
    if (std::isinf(x))
        return bits;
    const uint32_t low = bits & 0x7fffe000u;   // truncated magnitude, then the next TF32 value up
    const uint32_t high = low + 0x2000u;
    auto value = [](uint32_t b) { return b >= 0x7f800000u ? std::ldexp(1.0, 128) : (double)AsFloat(b); };
    const uint32_t code = Nearest<uint32_t>(std::fabs((double)x), low, high, value(low), value(high), true);
    return code | (bits & 0x80000000u);
}

bool IsNan16(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool IsNanBf16(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

std::vector<uint32_t> Inputs()
{
    std::mt19937_64 random(20240607);
    std::vector<uint32_t> inputs;
    for (int i = 0; i < 2000000; ++i)
        inputs.push_back((uint32_t)random());   // every bit pattern: NaN, infinities, subnormals
    std::uniform_real_distribution<double> exponent(-30.0, 18.0);
    for (int i = 0; i < 2000000; ++i) {
        const float x = (float)std::exp2(exponent(random)) * ((random() & 1) ? -1.0f : 1.0f);
        inputs.push_back(AsBits(x));   // the binary16 range and just outside it
    }
    for (uint32_t h = 0; h < 0x7c00; ++h) {
        // Exactly halfway between consecutive binary16 values, and one binary32 ulp either side.
        const double middle = (HalfValue((uint16_t)h) + HalfValue((uint16_t)(h + 1))) / 2;
        const uint32_t m = AsBits((float)middle);
        for (uint32_t b : {m - 1, m, m + 1, m | 0x80000000u})
            inputs.push_back(b);
    }
    for (uint32_t b = 0; b < 0x10000; ++b)
        for (uint32_t low : {0x7fffu, 0x8000u, 0x8001u, 0x0000u})
            inputs.push_back(b << 16 | low);   // bf16 ties and near-ties
    for (uint32_t special : {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0x00000001u, 0x477fefffu,
                             0x477ff000u, 0x477ff001u, 0x7f7fffffu, 0x33000000u, 0x33000001u, 0x32ffffffu})
        inputs.push_back(special);
    return inputs;
}

}  // namespace

int main()
{
    const std::vector<uint32_t> inputs = Inputs();
    for (uint32_t bits : inputs) {
        const float x = AsFloat(bits);
        const bool nan = std::isnan(x);

        const uint16_t f16 = tome_ptx::cvt_rn_f16_f32(x);
        Expect(nan ? IsNan16(f16) : f16 == OracleF16(x), "cvt.rn.f16.f32", bits, f16, nan ? 0x7fff : OracleF16(x));
#if defined(__F16C__)
        if (!nan) {
            const uint16_t hardware = (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
            Expect(f16 == hardware, "cvt.rn.f16.f32 vs F16C", bits, f16, hardware);
        }
#endif
        const uint16_t bf16 = tome_ptx::cvt_rn_bf16_f32(x);
        Expect(nan ? IsNanBf16(bf16) : bf16 == OracleBf16(x), "cvt.rn.bf16.f32", bits, bf16, nan ? 0x7fff : OracleBf16(x));

        const uint32_t tf32 = AsBits(tome_ptx::cvt_rna_tf32_f32(x));
        Expect(nan ? std::isnan(AsFloat(tf32)) && (tf32 & 0x1fffu) == 0 : tf32 == OracleTf32(x), "cvt.rna.tf32.f32", bits, tf32,
               nan ? 0x7fc00000u : OracleTf32(x));

        Expect(tome_ptx::mov_f32_to_b32(x) == bits && AsBits(tome_ptx::mov_b32_to_f32(bits)) == bits, "mov.b32", bits,
               tome_ptx::mov_f32_to_b32(x), bits);
    }
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float widened = tome_ptx::cvt_f32_f16((uint16_t)h);
        const bool nan = IsNan16((uint16_t)h);
        const double expected = (h & 0x7c00) == 0x7c00 && !nan ? ((h & 0x8000) ? -INFINITY : INFINITY) : HalfValue((uint16_t)h);
        Expect(nan ? std::isnan(widened) : ((double)widened == expected && std::signbit(widened) == ((h & 0x8000) != 0)), "cvt.f32.f16", h,
               AsBits(widened), AsBits((float)expected));
        // Narrowing what was widened gives the code back (NaN aside).
        if (!nan)
            Expect(tome_ptx::cvt_rn_f16_f32(widened) == h, "cvt.rn.f16.f32(cvt.f32.f16(h)) == h", h, tome_ptx::cvt_rn_f16_f32(widened), h);
    }
    std::printf("PTX twins: %zu binary32 inputs and all 65536 binary16 codes checked, %d failures\n", inputs.size(), failures);
    return failures == 0 ? 0 : 1;
}
