// tome_emu_warp.h: warp-level intrinsics of the emulated device as rendezvous of the lanes of their mask.
//
// Each intrinsic deposits the lane's operands and waits in the driver until every lane named in `mask`
// has called the same intrinsic with the same mask (and, for shuffles, the same width); the driver reports
// a lane outside its own mask, a mask naming an absent or exited lane, and lanes that disagree. The
// results follow the PTX ISA (shfl.sync, vote.sync, bar.warp.sync); the WarpOps live in the driver.
#pragma once
#include <string.h>

#include "tome_emu_abi.h"

extern "C" {
extern const tome_emu::WarpOp tome_emu_op_shfl_idx;
extern const tome_emu::WarpOp tome_emu_op_shfl_up;
extern const tome_emu::WarpOp tome_emu_op_shfl_down;
extern const tome_emu::WarpOp tome_emu_op_shfl_bfly;
extern const tome_emu::WarpOp tome_emu_op_ballot;
extern const tome_emu::WarpOp tome_emu_op_any;
extern const tome_emu::WarpOp tome_emu_op_all;
extern const tome_emu::WarpOp tome_emu_op_syncwarp;
extern const tome_emu::WarpOp tome_emu_op_reduce_add;
extern const tome_emu::WarpOp tome_emu_op_reduce_min;
extern const tome_emu::WarpOp tome_emu_op_reduce_max;
}

namespace tome_emu {

// A shuffle lane's operands: its value (up to 64 bits) and b (source lane, delta or lane mask).
struct ShuffleIn {
    unsigned long long value;
    unsigned int b;
};

template <typename T>
inline T shuffle(const WarpOp& op, unsigned int mask, T var, unsigned int b, int c, const char* file, int line)
{
    static_assert(sizeof(T) <= 8, "shuffles move at most 64 bits");
    ShuffleIn in{0, b};
    memcpy(&in.value, &var, sizeof(T));
    unsigned long long out = 0;
    tome_emu_warp_collective(&op, mask, c, &in, &out, file, line);
    T result;
    memcpy(&result, &out, sizeof(T));
    return result;
}

inline unsigned int vote(const WarpOp& op, unsigned int mask, int predicate, const char* file, int line)
{
    int in = predicate != 0;
    unsigned int out = 0;
    tome_emu_warp_collective(&op, mask, 0, &in, &out, file, line);
    return out;
}

}  // namespace tome_emu

// c = segment mask << 8 | clamp, exactly as the CUDA headers build it for shfl.sync.
#define TOME_EMU_SHFL_C(width, clamp) ((((32 - (width)) << 8)) | (clamp))

template <typename T>
inline T __shfl_sync(unsigned int mask, T var, int src_lane, int width = 32, TOME_EMU_SITE)
{
    return tome_emu::shuffle(tome_emu_op_shfl_idx, mask, var, (unsigned int)src_lane, TOME_EMU_SHFL_C(width, 0x1f), file, line);
}

template <typename T>
inline T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = 32, TOME_EMU_SITE)
{
    return tome_emu::shuffle(tome_emu_op_shfl_up, mask, var, delta, TOME_EMU_SHFL_C(width, 0), file, line);
}

template <typename T>
inline T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = 32, TOME_EMU_SITE)
{
    return tome_emu::shuffle(tome_emu_op_shfl_down, mask, var, delta, TOME_EMU_SHFL_C(width, 0x1f), file, line);
}

template <typename T>
inline T __shfl_xor_sync(unsigned int mask, T var, int lane_mask, int width = 32, TOME_EMU_SITE)
{
    return tome_emu::shuffle(tome_emu_op_shfl_bfly, mask, var, (unsigned int)lane_mask, TOME_EMU_SHFL_C(width, 0x1f), file, line);
}

inline unsigned int __ballot_sync(unsigned int mask, int predicate, TOME_EMU_SITE)
{
    return tome_emu::vote(tome_emu_op_ballot, mask, predicate, file, line);
}

inline int __any_sync(unsigned int mask, int predicate, TOME_EMU_SITE)
{
    return (int)tome_emu::vote(tome_emu_op_any, mask, predicate, file, line);
}

inline int __all_sync(unsigned int mask, int predicate, TOME_EMU_SITE)
{
    return (int)tome_emu::vote(tome_emu_op_all, mask, predicate, file, line);
}

inline void __syncwarp(unsigned int mask = 0xffffffffu, TOME_EMU_SITE)
{
    tome_emu_warp_collective(&tome_emu_op_syncwarp, mask, 0, nullptr, nullptr, file, line);
}

#define TOME_EMU_REDUCE(name, op)                                                                                   \
    inline unsigned int name(unsigned int mask, unsigned int value, TOME_EMU_SITE)                                   \
    {                                                                                                               \
        unsigned int out = 0;                                                                                       \
        tome_emu_warp_collective(&op, mask, 0, &value, &out, file, line);                                           \
        return out;                                                                                                 \
    }
TOME_EMU_REDUCE(__reduce_add_sync, tome_emu_op_reduce_add)
TOME_EMU_REDUCE(__reduce_min_sync, tome_emu_op_reduce_min)
TOME_EMU_REDUCE(__reduce_max_sync, tome_emu_op_reduce_max)
#undef TOME_EMU_REDUCE
