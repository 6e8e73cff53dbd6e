// tome_ptx_mma.h: the emulated twins of kernels/tensor_core.cuh's warp-wide matrix instructions and cp.async.
//
// mma.sync and ldmatrix are warp collectives (tome_emu_abi.h): each lane deposits its fragment registers (or its
// row address) and waits; the combine in emulator/src/mma_ops.cpp rebuilds the matrices from the PTX ISA's
// fragment layouts, computes, and hands every lane its result registers. A kernel that puts an element in the
// wrong register computes a wrong product; a lane that does not take part is an error naming the kernel.
//
// cp.async copies are deferred as on a GPU: at issue the destination is poisoned (0x7fbadbad) and the copy is
// queued for the issuing thread; cp.async.wait_group N performs the thread's copies of all but its N most recent
// committed groups. So a tile read before its wait (or by another thread before a barrier) reads poison.
#pragma once
#include <stdint.h>
#include <string.h>

#include "tome_emu_abi.h"

extern "C" {
extern const tome_emu::WarpOp tome_emu_op_mma_m16n8k16;
extern const tome_emu::WarpOp tome_emu_op_mma_m8n8k4;
extern const tome_emu::WarpOp tome_emu_op_ldmatrix;
// cp.async on the calling fiber: op 0 issues a 16-byte copy, 1 commits a group, 2 + N waits for all but N groups.
void tome_emu_cp_async(int op, void* dst, const void* src);
}

namespace tome_ptx {

enum class MmaType : int { F16 = 0, BF16 = 1 };

// What one lane deposits for mma.sync.m16n8k16 (A, B and C fragments); it gets back its 4 D values.
struct MmaLane {
    uint32_t a[4];
    uint32_t b[2];
    float c[4];
};

// What one lane deposits for mma.sync.m8n8k4 .f16 → .f32 (A, B and C fragments of its quad-pair's product); it
// gets back its 8 D values.
struct Mma884Lane {
    uint32_t a[2];
    uint32_t b[2];
    float c[8];
};

inline uint32_t shared_address(const void* p) { return (uint32_t)(uintptr_t)p; }

inline void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], MmaType type,
                         const char* file = __builtin_FILE(), int line = __builtin_LINE())
{
    MmaLane in;
    memcpy(in.a, a, sizeof in.a);
    memcpy(in.b, b, sizeof in.b);
    memcpy(in.c, d, sizeof in.c);
    float out[4];
    tome_emu_warp_collective(&tome_emu_op_mma_m16n8k16, 0xffffffffu, (int)type, &in, out, file, line);
    memcpy(d, out, sizeof out);
}

// mma.sync.aligned.m8n8k4.row.{row,col}.f32.f16.f16.f32 (b_row: B's layout is .row).
inline void mma_m8n8k4(float (&d)[8], const uint32_t (&a)[2], const uint32_t (&b)[2], bool b_row,
                       const char* file = __builtin_FILE(), int line = __builtin_LINE())
{
    Mma884Lane in;
    memcpy(in.a, a, sizeof in.a);
    memcpy(in.b, b, sizeof in.b);
    memcpy(in.c, d, sizeof in.c);
    float out[8];
    tome_emu_warp_collective(&tome_emu_op_mma_m8n8k4, 0xffffffffu, b_row ? 1 : 0, &in, out, file, line);
    memcpy(d, out, sizeof out);
}

// ldmatrix .x`count` (1, 2 or 4), optionally .trans: the lane deposits its row address (the generic pointer;
// `window` is the 32-bit shared address the hardware instruction takes, unused here).
template <int N>
inline void ldmatrix(uint32_t (&r)[N], int count, bool trans, const void* row, uint32_t window,
                     const char* file = __builtin_FILE(), int line = __builtin_LINE())
{
    (void)window;
    static_assert(N <= 4, "at most four matrices");
    const void* in = row;
    uint32_t out[4];
    tome_emu_warp_collective(&tome_emu_op_ldmatrix, 0xffffffffu, count | (trans ? 0x100 : 0), &in, out, file, line);
    memcpy(r, out, sizeof(uint32_t) * N);
}

// cp.async: the queue lives in the driver (mma_ops.cpp), since the kernel library's thread-local storage is its
// shared memory, poisoned before every block.
inline void cp_async_16(void* dst, const void* src, const char* file = __builtin_FILE(), int line = __builtin_LINE())
{
    if ((((uintptr_t)dst | (uintptr_t)src) & 15u) != 0)
        tome_emu_trap("cp.async of 16 bytes with an address not 16-byte aligned", file, line);
    tome_emu_cp_async(0, dst, src);
}

inline void cp_async_commit() { tome_emu_cp_async(1, nullptr, nullptr); }

inline void cp_async_wait(int pending) { tome_emu_cp_async(2 + pending, nullptr, nullptr); }

}  // namespace tome_ptx
