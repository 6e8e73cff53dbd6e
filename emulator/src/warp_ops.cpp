// warp_ops.cpp: the warp collectives' results, as the PTX ISA defines shfl.sync, vote.sync, redux.sync and
// bar.warp.sync. Each combine runs once, after every lane of `mask` has deposited its operands.
#include <cstdio>
#include <cstring>

#include "tome_emu_abi.h"
#include "tome_emu_warp.h"

namespace {

using tome_emu::ShuffleIn;
using tome_emu::WarpOp;

enum class ShuffleMode { Up, Down, Bfly, Idx };

// shfl.sync: c packs the segment mask (c[12:8]) and the clamp value (c[4:0]); a source lane outside the
// segment, or past the clamp, reads the lane's own value. A source lane outside `mask` is undefined in PTX:
// the emulator reports it.
template <ShuffleMode mode>
const char* Shuffle(const WarpOp*, unsigned int mask, int c, const void* const* in, void* const* out)
{
    const unsigned int segmask = ((unsigned int)c >> 8) & 0x1fu, cval = (unsigned int)c & 0x1fu;
    for (unsigned int lane = 0; lane < 32; ++lane) {
        if ((mask & (1u << lane)) == 0)
            continue;
        const auto* mine = static_cast<const ShuffleIn*>(in[lane]);
        const unsigned int b = mine->b & 0x1fu;
        const unsigned int max_lane = (lane & segmask) | (cval & ~segmask);
        const unsigned int min_lane = lane & segmask;
        int j = 0;
        bool valid = false;
        switch (mode) {
        case ShuffleMode::Up: j = (int)lane - (int)b; valid = j >= (int)max_lane; break;
        case ShuffleMode::Down: j = (int)(lane + b); valid = j <= (int)max_lane; break;
        case ShuffleMode::Bfly: j = (int)(lane ^ b); valid = j <= (int)max_lane; break;
        case ShuffleMode::Idx: j = (int)(min_lane | (b & ~segmask)); valid = j <= (int)max_lane; break;
        }
        if (!valid)
            j = (int)lane;
        if ((mask & (1u << j)) == 0) {
            thread_local char message[160];
            std::snprintf(message, sizeof message, "lane %u reads lane %d, which is not in the mask 0x%08x (an undefined value in PTX)",
                          lane, j, mask);
            return message;
        }
        *static_cast<unsigned long long*>(out[lane]) = static_cast<const ShuffleIn*>(in[j])->value;
    }
    return nullptr;
}

enum class VoteMode { Ballot, Any, All };

template <VoteMode mode>
const char* Vote(const WarpOp*, unsigned int mask, int, const void* const* in, void* const* out)
{
    unsigned int ballot = 0;
    for (unsigned int lane = 0; lane < 32; ++lane)
        if ((mask & (1u << lane)) != 0 && *static_cast<const int*>(in[lane]) != 0)
            ballot |= 1u << lane;
    const unsigned int result = mode == VoteMode::Ballot ? ballot : mode == VoteMode::Any ? (ballot != 0) : (ballot == mask);
    for (unsigned int lane = 0; lane < 32; ++lane)
        if ((mask & (1u << lane)) != 0)
            *static_cast<unsigned int*>(out[lane]) = result;
    return nullptr;
}

const char* SyncWarp(const WarpOp*, unsigned int, int, const void* const*, void* const*) { return nullptr; }

enum class ReduceMode { Add, Min, Max };

template <ReduceMode mode>
const char* Reduce(const WarpOp*, unsigned int mask, int, const void* const* in, void* const* out)
{
    bool first = true;
    unsigned int result = 0;
    for (unsigned int lane = 0; lane < 32; ++lane) {
        if ((mask & (1u << lane)) == 0)
            continue;
        const unsigned int v = *static_cast<const unsigned int*>(in[lane]);
        if (first)
            result = v;
        else if (mode == ReduceMode::Add)
            result += v;
        else if (mode == ReduceMode::Min)
            result = v < result ? v : result;
        else
            result = v > result ? v : result;
        first = false;
    }
    for (unsigned int lane = 0; lane < 32; ++lane)
        if ((mask & (1u << lane)) != 0)
            *static_cast<unsigned int*>(out[lane]) = result;
    return nullptr;
}

}  // namespace

#define TOME_EMU_OP(symbol, name, fn) extern "C" __attribute__((visibility("default"))) const WarpOp symbol = {name, fn};
TOME_EMU_OP(tome_emu_op_shfl_idx, "__shfl_sync", &Shuffle<ShuffleMode::Idx>)
TOME_EMU_OP(tome_emu_op_shfl_up, "__shfl_up_sync", &Shuffle<ShuffleMode::Up>)
TOME_EMU_OP(tome_emu_op_shfl_down, "__shfl_down_sync", &Shuffle<ShuffleMode::Down>)
TOME_EMU_OP(tome_emu_op_shfl_bfly, "__shfl_xor_sync", &Shuffle<ShuffleMode::Bfly>)
TOME_EMU_OP(tome_emu_op_ballot, "__ballot_sync", &Vote<VoteMode::Ballot>)
TOME_EMU_OP(tome_emu_op_any, "__any_sync", &Vote<VoteMode::Any>)
TOME_EMU_OP(tome_emu_op_all, "__all_sync", &Vote<VoteMode::All>)
TOME_EMU_OP(tome_emu_op_syncwarp, "__syncwarp", &SyncWarp)
TOME_EMU_OP(tome_emu_op_reduce_add, "__reduce_add_sync", &Reduce<ReduceMode::Add>)
TOME_EMU_OP(tome_emu_op_reduce_min, "__reduce_min_sync", &Reduce<ReduceMode::Min>)
TOME_EMU_OP(tome_emu_op_reduce_max, "__reduce_max_sync", &Reduce<ReduceMode::Max>)
