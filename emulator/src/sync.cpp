// sync.cpp: barriers and warp collectives of a block's fibers, and the messages when they go wrong.
#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

#include "block.h"

namespace tome_emu {

namespace {

const char* BarrierName(int kind)
{
    switch (kind) {
    case kBarrierOr: return "__syncthreads_or";
    case kBarrierAnd: return "__syncthreads_and";
    case kBarrierCount: return "__syncthreads_count";
    default: return "__syncthreads";
    }
}

const char* BaseName(const char* path)
{
    if (path == nullptr)
        return "?";
    const char* slash = std::strrchr(path, '/');
    return slash == nullptr ? path : slash + 1;
}

// "3, 5-9, 12": sorted indices as ranges.
std::string Ranges(std::vector<int> indices)
{
    std::sort(indices.begin(), indices.end());
    std::string text;
    for (size_t i = 0; i < indices.size();) {
        size_t j = i;
        while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1)
            ++j;
        text += (text.empty() ? "" : ", ") + (i == j ? Format("%d", indices[i]) : Format("%d-%d", indices[i], indices[j]));
        i = j + 1;
    }
    return text;
}

std::vector<int> Lanes(unsigned int mask)
{
    std::vector<int> lanes;
    for (int lane = 0; lane < 32; ++lane)
        if (mask & (1u << lane))
            lanes.push_back(lane);
    return lanes;
}

}  // namespace

std::string BlockRunner::ThreadName(int index) const
{
    const Fiber* fiber = fibers_[index];
    std::string name = Format("%s block (%u,%u,%u) thread %d", plan_->name.c_str(), block_idx_.x, block_idx_.y, block_idx_.z, index);
    if (plan_->block.y > 1 || plan_->block.z > 1)
        name += Format(" (%u,%u,%u)", fiber->thread_idx.x, fiber->thread_idx.y, fiber->thread_idx.z);
    return name;
}

std::string BlockRunner::Where(const Fiber* fiber) const
{
    const char* what = fiber->state == Fiber::State::AtWarp ? fiber->op->name
                       : fiber->state == Fiber::State::AtBarrier ? BarrierName(fiber->barrier_kind)
                                                                 : "the last synchronization";
    return Format("%s at %s:%d", what, BaseName(fiber->file), fiber->line);
}

int BlockRunner::Barrier(Fiber* fiber, int kind, int predicate, const char* file, int line)
{
    fiber->state = Fiber::State::AtBarrier;
    fiber->barrier_kind = kind;
    fiber->predicate = predicate;
    fiber->file = file;
    fiber->line = line;
    ++at_barrier_;
    Yield(fiber);
    return fiber->barrier_result;
}

// Every thread that has not exited waits at a barrier: release them, if it is one barrier reached by all.
Status BlockRunner::ReleaseBarrier()
{
    std::map<std::tuple<std::string, int, int>, std::vector<int>> sites;
    std::vector<int> exited;
    for (int i = 0; i < count_; ++i) {
        const Fiber* fiber = fibers_[i];
        if (fiber->state == Fiber::State::Exited)
            exited.push_back(i);
        else
            sites[{BaseName(fiber->file), fiber->line, fiber->barrier_kind}].push_back(i);
    }
    const std::string prefix = Format("%s block (%u,%u,%u): ", plan_->name.c_str(), block_idx_.x, block_idx_.y, block_idx_.z);
    if (sites.size() > 1) {
        std::string text;
        for (const auto& [site, threads] : sites)
            text += Format("%sthreads %s wait at %s at %s:%d", text.empty() ? "" : "; ", Ranges(threads).c_str(),
                           BarrierName(std::get<2>(site)), std::get<0>(site).c_str(), std::get<1>(site));
        return Fail(kLaunchFailed, prefix + "the threads wait at different barriers (a barrier in divergent code): " + text);
    }
    const auto& [site, threads] = *sites.begin();
    if (!exited.empty())
        return Fail(kLaunchFailed, prefix + Format("%s at %s:%d is reached by %zu of %d threads; threads %s exited without reaching it "
                                                   "(a barrier not all threads reach)",
                                                   BarrierName(std::get<2>(site)), std::get<0>(site).c_str(), std::get<1>(site),
                                                   threads.size(), count_, Ranges(exited).c_str()));
    int any = 0, all = 1, count = 0;
    for (int i : threads) {
        any |= fibers_[i]->predicate;
        all &= fibers_[i]->predicate;
        count += fibers_[i]->predicate;
    }
    const int kind = std::get<2>(site);
    const int result = kind == kBarrierOr ? any : kind == kBarrierAnd ? all : kind == kBarrierCount ? count : 0;
    std::vector<int> release = threads;
    for (int i : release)
        fibers_[i]->barrier_result = result;
    at_barrier_ = 0;
    PushInOrder(release.data(), (int)release.size(), false);
    return {};
}

void BlockRunner::Collective(Fiber* fiber, const WarpOp* op, unsigned int mask, int op_arg, const void* in, void* out,
                             const char* file, int line)
{
    fiber->file = file;
    fiber->line = line;
    Warp& warp = warps_[fiber->warp];
    const unsigned int bit = 1u << fiber->lane;
    // Messages are built only when something is wrong: this is the emulator's hottest path.
    auto call = [&] { return Format("%s(mask 0x%08x) at %s:%d", op->name, mask, BaseName(file), line); };
    if ((mask & bit) == 0)
        Trap(fiber, kLaunchFailed, Format("lane %u calls %s, whose mask does not include the calling lane", fiber->lane, call().c_str()));
    if ((mask & ~warp.present) != 0)
        Trap(fiber, kLaunchFailed, Format("%s names lanes %s of warp %u, which do not exist in a block of %d threads", call().c_str(),
                                          Ranges(Lanes(mask & ~warp.present)).c_str(), fiber->warp, count_));
    if ((mask & warp.exited) != 0)
        Trap(fiber, kLaunchFailed, Format("%s names lanes %s of warp %u, which have exited", call().c_str(),
                                          Ranges(Lanes(mask & warp.exited)).c_str(), fiber->warp));
    Group* group = nullptr;
    for (int i = 0; i < warp.group_count; ++i) {
        Group& g = warp.groups[i];
        if ((g.mask & mask) == 0)
            continue;
        if (g.mask != mask || g.op != op || g.op_arg != op_arg)
            Trap(fiber, kLaunchFailed, Format("lanes disagree: lane %u calls %s%s while lanes %s of warp %u wait in %s(mask 0x%08x%s) at %s:%d",
                                              fiber->lane, call().c_str(), g.op == op && g.op_arg != op_arg ? Format(" (operand 0x%x)", op_arg).c_str() : "",
                                              Ranges(Lanes(g.arrived)).c_str(), fiber->warp, g.op->name, g.mask,
                                              g.op == op && g.op_arg != op_arg ? Format(", operand 0x%x", g.op_arg).c_str() : "",
                                              BaseName(g.file), g.line));
        group = &g;
        break;
    }
    if (group == nullptr) {
        group = &warp.groups[warp.group_count++];
        *group = Group{op, mask, 0u, op_arg, file, line};
    }
    fiber->state = Fiber::State::AtWarp;
    fiber->op = op;
    fiber->mask = mask;
    fiber->op_arg = op_arg;
    fiber->in = in;
    fiber->out = out;
    group->arrived |= bit;
    if (group->arrived == mask) {
        const void* ins[32] = {};
        void* outs[32] = {};
        int lanes[32];
        int count = 0;
        const int first = (int)fiber->warp * 32;
        for (unsigned int rest = mask; rest != 0; rest &= rest - 1) {
            const int lane = __builtin_ctz(rest);
            ins[lane] = fibers_[first + lane]->in;
            outs[lane] = fibers_[first + lane]->out;
            lanes[count++] = first + lane;
        }
        if (const char* invalid = op->combine(op, mask, op_arg, ins, outs))
            Trap(fiber, kLaunchFailed, Format("%s: %s", call().c_str(), invalid));
        *group = warp.groups[--warp.group_count];
        PushInOrder(lanes, count, true);
    }
    Yield(fiber);
}

void BlockRunner::Exit(Fiber* fiber)
{
    fiber->state = Fiber::State::Exited;
    ++exited_;
    Warp& warp = warps_[fiber->warp];
    const unsigned int bit = 1u << fiber->lane;
    warp.exited |= bit;
    for (int i = 0; i < warp.group_count; ++i)
        if (const Group& g = warp.groups[i]; g.mask & bit)
            Trap(fiber, kLaunchFailed, Format("lane %u exits while lanes %s of warp %u wait for it in %s(mask 0x%08x) at %s:%d",
                                              fiber->lane, Ranges(Lanes(g.arrived)).c_str(), fiber->warp, g.op->name, g.mask,
                                              BaseName(g.file), g.line));
    Yield(fiber);
    __builtin_unreachable();
}

// Where every thread that has not exited waits, grouped by place: the body of a deadlock report.
std::string BlockRunner::DescribeWaits() const
{
    std::map<std::string, std::vector<int>> places;
    for (int i = 0; i < count_; ++i) {
        const Fiber* fiber = fibers_[i];
        if (fiber->state == Fiber::State::AtBarrier) {
            places[Format("wait at %s", Where(fiber).c_str())].push_back(i);
        } else if (fiber->state == Fiber::State::AtWarp) {
            const Warp& warp = warps_[fiber->warp];
            unsigned int arrived = 0;
            for (int g = 0; g < warp.group_count; ++g)
                if (warp.groups[g].mask & (1u << fiber->lane))
                    arrived = warp.groups[g].arrived;
            std::vector<int> missing;
            for (int lane : Lanes(fiber->mask & ~arrived))
                missing.push_back((int)fiber->warp * 32 + lane);
            places[Format("wait in %s(mask 0x%08x) at %s:%d for threads %s", fiber->op->name, fiber->mask, BaseName(fiber->file),
                          fiber->line, Ranges(missing).c_str())]
                .push_back(i);
        }
    }
    std::string text = Format("%s block (%u,%u,%u):", plan_->name.c_str(), block_idx_.x, block_idx_.y, block_idx_.z);
    for (const auto& [place, threads] : places)
        text += Format(" threads %s %s;", Ranges(threads).c_str(), place.c_str());
    if (exited_ > 0)
        text += Format(" %d threads have exited.", exited_);
    return text;
}

}  // namespace tome_emu

#define TOME_EMU_EXPORT extern "C" __attribute__((visibility("default")))

TOME_EMU_EXPORT int tome_emu_barrier(int kind, int predicate, const char* file, int line)
{
    auto* fiber = static_cast<tome_emu::Fiber*>(tome_emu::self());
    return fiber->runner->Barrier(fiber, kind, predicate, file, line);
}

TOME_EMU_EXPORT void tome_emu_warp_collective(const tome_emu::WarpOp* op, unsigned int mask, int op_arg, const void* in, void* out,
                                              const char* file, int line)
{
    auto* fiber = static_cast<tome_emu::Fiber*>(tome_emu::self());
    fiber->runner->Collective(fiber, op, mask, op_arg, in, out, file, line);
}

TOME_EMU_EXPORT void tome_emu_trap(const char* what, const char* file, int line)
{
    auto* fiber = static_cast<tome_emu::Fiber*>(tome_emu::self());
    const bool assertion = std::strncmp(what, "assertion", 9) == 0;
    fiber->runner->Trap(fiber, assertion ? tome_emu::kAssert : tome_emu::kLaunchFailed,
                        tome_emu::Format("%s at %s:%d", what, file, line));
}
