// mma_ops.cpp: the combine steps of mma.sync.m16n8k16, mma.sync.m8n8k4 and ldmatrix (emulator/include/tome_ptx_mma.h), from the
// PTX ISA's fragment layouts ("Matrix Fragments for mma.m16n8k16 with floating point type", "ldmatrix").
// g = lane / 4 (groupID), t = lane % 4 (threadID_in_group); the lower-indexed element sits in a register's low half.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tome_emu_abi.h"
#include "tome_ptx_mma.h"
#include "tome_ptx_twins.h"

namespace {

using tome_emu::WarpOp;
using tome_ptx::MmaLane;

float Element(uint16_t bits, int type) { return type == 0 ? tome_ptx::cvt_f32_f16(bits) : tome_ptx::mov_b32_to_f32((uint32_t)bits << 16); }

uint16_t Half(uint32_t reg, int which) { return (uint16_t)(which == 0 ? reg & 0xffffu : reg >> 16); }

// D = A·B + C: the products are exact and the sum is taken in double, then rounded once to fp32 (tensor cores
// keep at least fp32 precision in the accumulation; their exact order and rounding are unspecified).
const char* Mma(const WarpOp*, unsigned int mask, int type, const void* const* in, void* const* out)
{
    if (mask != 0xffffffffu)
        return "mma.sync.aligned needs all 32 lanes of the warp";
    if (type != 0 && type != 1)
        return "mma.sync: unknown element type";
    float a[16][16], b[16][8], c[16][8];
    for (int lane = 0; lane < 32; ++lane) {
        const auto* f = static_cast<const MmaLane*>(in[lane]);
        const int g = lane / 4, t = lane % 4;
        for (int e = 0; e < 2; ++e) {
            a[g][2 * t + e] = Element(Half(f->a[0], e), type);
            a[g + 8][2 * t + e] = Element(Half(f->a[1], e), type);
            a[g][2 * t + 8 + e] = Element(Half(f->a[2], e), type);
            a[g + 8][2 * t + 8 + e] = Element(Half(f->a[3], e), type);
            b[2 * t + e][g] = Element(Half(f->b[0], e), type);
            b[2 * t + 8 + e][g] = Element(Half(f->b[1], e), type);
            c[g][2 * t + e] = f->c[e];
            c[g + 8][2 * t + e] = f->c[2 + e];
        }
    }
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        float* d = static_cast<float*>(out[lane]);
        for (int i = 0; i < 4; ++i) {
            const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
            double sum = c[row][col];
            for (int k = 0; k < 16; ++k)
                sum += (double)a[row][k] * (double)b[k][col];
            d[i] = (float)sum;
        }
    }
    return nullptr;
}

// mma.sync.aligned.m8n8k4.row.{col,row}.f32.f16.f16.f32: four independent 8×8×4 products, quad-pair q being lanes
// 4q..4q+3 ("low", hi = 0) and 16+4q..16+4q+3 ("high", hi = 1). From the ISA's tables, with i the element index
// (a0..a3 and b0..b3 two per register, c0..c7 one per register):
//   A .row:   A[lane%4 + 4hi][i]
//   B .col:   B[i][lane%4 + 4hi]            B .row:   B[lane%4][i + 4hi]
//   C/D .f32: C[(lane&1) + (i&2) + 4hi][(i&4) + (lane&2) + (i&1)]
const char* Mma884(const WarpOp*, unsigned int mask, int b_row, const void* const* in, void* const* out)
{
    if (mask != 0xffffffffu)
        return "mma.sync.aligned needs all 32 lanes of the warp";
    if (b_row != 0 && b_row != 1)
        return "mma.sync.m8n8k4: unknown B layout";
    for (int q = 0; q < 4; ++q) {
        float a[8][4], b[4][8], c[8][8];
        for (int hi = 0; hi < 2; ++hi) {
            for (int j = 0; j < 4; ++j) {
                const int lane = 16 * hi + 4 * q + j;
                const auto* f = static_cast<const tome_ptx::Mma884Lane*>(in[lane]);
                for (int i = 0; i < 4; ++i) {
                    const float ai = Element(Half(f->a[i / 2], i % 2), 0), bi = Element(Half(f->b[i / 2], i % 2), 0);
                    a[lane % 4 + 4 * hi][i] = ai;
                    if (b_row)
                        b[lane % 4][i + 4 * hi] = bi;
                    else
                        b[i][lane % 4 + 4 * hi] = bi;
                }
                for (int i = 0; i < 8; ++i)
                    c[(lane & 1) + (i & 2) + 4 * hi][(i & 4) + (lane & 2) + (i & 1)] = f->c[i];
            }
        }
        for (int hi = 0; hi < 2; ++hi) {
            for (int j = 0; j < 4; ++j) {
                const int lane = 16 * hi + 4 * q + j;
                float* d = static_cast<float*>(out[lane]);
                for (int i = 0; i < 8; ++i) {
                    const int row = (lane & 1) + (i & 2) + 4 * hi, col = (i & 4) + (lane & 2) + (i & 1);
                    double sum = c[row][col];
                    for (int k = 0; k < 4; ++k)
                        sum += (double)a[row][k] * (double)b[k][col];
                    d[i] = (float)sum;
                }
            }
        }
    }
    return nullptr;
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: lanes 8i..8i+7 address the rows of matrix i.
const char* LdMatrix(const WarpOp*, unsigned int mask, int arg, const void* const* in, void* const* out)
{
    const int count = arg & 0xff;
    const bool trans = (arg & 0x100) != 0;
    if (mask != 0xffffffffu)
        return "ldmatrix.sync.aligned needs all 32 lanes of the warp";
    if (count != 1 && count != 2 && count != 4)
        return "ldmatrix: .num must be .x1, .x2 or .x4";
    const uint16_t* rows[32];
    for (int lane = 0; lane < 8 * count; ++lane) {
        rows[lane] = *static_cast<const uint16_t* const*>(in[lane]);
        if (((uintptr_t)rows[lane] & 15u) != 0) {
            thread_local char message[120];
            std::snprintf(message, sizeof message, "ldmatrix: lane %d's row address %p is not 16-byte aligned", lane, (const void*)rows[lane]);
            return message;
        }
    }
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        auto* r = static_cast<uint32_t*>(out[lane]);
        for (int m = 0; m < count; ++m) {
            const uint16_t lo = trans ? rows[8 * m + 2 * t][g] : rows[8 * m + g][2 * t];
            const uint16_t hi = trans ? rows[8 * m + 2 * t + 1][g] : rows[8 * m + g][2 * t + 1];
            r[m] = (uint32_t)lo | ((uint32_t)hi << 16);
        }
    }
    return nullptr;
}

// A fiber's queued cp.async copies. One host thread runs one block's fibers at a time; a slot whose fiber or block
// differs from the caller's belongs to an earlier block and is reset.
struct AsyncCopy {
    void* dst;
    unsigned char bytes[16];
    int group;   // -1 until committed
};

struct AsyncCopies {
    const tome_emu::FiberHeader* fiber = nullptr;
    tome_emu::Dim3 block{};
    int committed = 0;
    std::vector<AsyncCopy> queue;
};

AsyncCopies& Copies()
{
    static thread_local std::vector<AsyncCopies> slots(1024);
    const tome_emu::FiberHeader* me = tome_emu::self();
    const unsigned int index = (me->thread_idx.z * me->block_dim.y + me->thread_idx.y) * me->block_dim.x + me->thread_idx.x;
    AsyncCopies& s = slots[index % slots.size()];
    if (s.fiber != me || std::memcmp(&s.block, &me->block_idx, sizeof s.block) != 0) {
        s.fiber = me;
        s.block = me->block_idx;
        s.committed = 0;
        s.queue.clear();
    }
    return s;
}

}  // namespace

// The source is read at issue (the copy's data is fixed then, as a later write to the source would be a race on a GPU
// too); the destination holds poison until a wait covers the copy's group.
extern "C" __attribute__((visibility("default"))) void tome_emu_cp_async(int op, void* dst, const void* src)
{
    AsyncCopies& s = Copies();
    if (op == 0) {
        AsyncCopy copy{dst, {}, -1};
        std::memcpy(copy.bytes, src, 16);
        const uint32_t poison = 0x7fbadbadu;
        for (int i = 0; i < 4; ++i)
            std::memcpy(static_cast<unsigned char*>(dst) + 4 * i, &poison, 4);
        s.queue.push_back(copy);
    } else if (op == 1) {
        for (AsyncCopy& c : s.queue)
            if (c.group < 0)
                c.group = s.committed;
        ++s.committed;
    } else {
        const int done_below = s.committed - (op - 2);   // groups [0, done_below) must have landed
        std::vector<AsyncCopy> rest;
        for (const AsyncCopy& c : s.queue) {
            if (c.group >= 0 && c.group < done_below)
                std::memcpy(c.dst, c.bytes, 16);
            else
                rest.push_back(c);
        }
        s.queue.swap(rest);
    }
}

extern "C" __attribute__((visibility("default"))) const WarpOp tome_emu_op_mma_m16n8k16 = {"mma.sync.aligned.m16n8k16", &Mma};
extern "C" __attribute__((visibility("default"))) const WarpOp tome_emu_op_mma_m8n8k4 = {"mma.sync.aligned.m8n8k4", &Mma884};
extern "C" __attribute__((visibility("default"))) const WarpOp tome_emu_op_ldmatrix = {"ldmatrix.sync.aligned.m8n8", &LdMatrix};
