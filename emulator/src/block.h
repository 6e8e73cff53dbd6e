// block.h: one thread block of a kernel, run as fibers on one host thread.
//
// The block's threads are fibers started in a chosen order (forward, reverse or seeded-random). A fiber runs
// until it reaches a barrier or a warp collective, or exits; then the next ready fiber runs. A barrier
// releases when every thread of the block waits at it (at the same place); a warp collective completes
// when every lane of its mask has arrived. Anything else is an error that names the threads and where they
// wait: a barrier some threads never reach, lanes that disagree, a mask naming an absent or exited lane,
// a deadlock. Memory faults in a fiber end the block with the faulting address explained.
#pragma once
#include <csetjmp>
#include <cstdint>
#include <string>
#include <vector>

#include "status.h"
#include "tome_emu_abi.h"

namespace tome_emu {

enum class ThreadOrder { Forward, Reverse, Random };

struct KernelLibraryHandle;

// What every block of one launch shares.
struct LaunchPlan {
    const KernelEntry* entry = nullptr;
    const KernelLibraryHandle* library = nullptr;
    std::string name;
    Dim3 grid{1, 1, 1}, block{1, 1, 1};
    unsigned int dynamic_shared = 0;
    const void* const* params = nullptr;
    ThreadOrder order = ThreadOrder::Random;
    uint64_t seed = 0;
};

class BlockRunner;

struct Fiber : FiberHeader {
    enum class State : unsigned char { Ready, Running, AtBarrier, AtWarp, Exited };
    void* sp = nullptr;           // saved stack pointer while switched out
    BlockRunner* runner = nullptr;
    int index = 0;                // linear thread index in the block
    State state = State::Ready;
    const char* file = nullptr;   // where it waits
    int line = 0;
    int barrier_kind = 0, predicate = 0, barrier_result = 0;
    const WarpOp* op = nullptr;   // the warp collective it waits in
    unsigned int mask = 0;
    int op_arg = 0;
    const void* in = nullptr;
    void* out = nullptr;
    void* asan_fake_stack = nullptr;
    unsigned char* region = nullptr;   // the fiber's kFiberRegionBytes: header page, guard page, stack
};

class BlockRunner {
public:
    BlockRunner();
    ~BlockRunner();
    BlockRunner(const BlockRunner&) = delete;
    BlockRunner& operator=(const BlockRunner&) = delete;

    // Runs block `block_idx` of `plan` to completion, or to the first error.
    Status Run(const LaunchPlan& plan, Dim3 block_idx);

    // Called by a fiber (through the driver's exported entry points).
    int Barrier(Fiber* fiber, int kind, int predicate, const char* file, int line);
    void Collective(Fiber* fiber, const WarpOp* op, unsigned int mask, int op_arg, const void* in, void* out, const char* file, int line);
    TOME_EMU_NORETURN void Trap(Fiber* fiber, int code, const std::string& what);
    TOME_EMU_NORETURN void Exit(Fiber* fiber);

    // The fault handler's way back (see InstallFaultHandler).
    static BlockRunner* Current();
    [[noreturn]] void Fault(int signal, uintptr_t address, bool write, uintptr_t pc);

    const LaunchPlan* plan() const { return plan_; }

private:
    struct Group {   // a warp collective in progress
        const WarpOp* op;
        unsigned int mask, arrived;
        int op_arg;
        const char* file;
        int line;
    };
    struct Warp {
        unsigned int present = 0, exited = 0;
        int group_count = 0;   // collectives in progress: disjoint masks, so at most 32
        Group groups[32];
    };

    void EnsureFibers(int count);
    void Start(Fiber* fiber);
    void Yield(Fiber* fiber);
    uint64_t NextRandom();
    // Makes threads ready in the configured order. At a barrier (or the block's start) they queue behind
    // the others, shuffled; after a warp collective they go first, rotated, so a warp tends to run on
    // until it blocks: a working set of 32 fibers rather than the whole block.
    void PushInOrder(int* indices, int count, bool first);
    bool TakeReady(Fiber** fiber);
    Status ReleaseBarrier();
    TOME_EMU_NORETURN void Abort(Fiber* fiber, int code, const std::string& what);
    std::string Where(const Fiber* fiber) const;
    std::string DescribeWaits() const;
    std::string ThreadName(int index) const;

    const LaunchPlan* plan_ = nullptr;
    Dim3 block_idx_{0, 0, 0};
    unsigned char* regions_ = nullptr;   // kFiberRegionBytes per fiber, aligned
    size_t mapped_bytes_ = 0;
    int capacity_ = 0, count_ = 0;
    std::vector<Fiber*> fibers_;
    Warp warps_[32];
    int warp_count_ = 0;
    static constexpr unsigned kReadyCapacity = 2048;   // a ring; a thread is in it at most once
    int ready_[kReadyCapacity];
    unsigned ready_head_ = 0, ready_tail_ = 0;
    int exited_ = 0, at_barrier_ = 0;
    uint64_t random_ = 0;
    void* scheduler_sp_ = nullptr;
    Fiber* running_ = nullptr;
    Status error_;
    sigjmp_buf fault_jump_;
    void* scheduler_fake_stack_ = nullptr;
    void* scheduler_stack_ = nullptr;   // the host thread's own stack, for AddressSanitizer's fiber switches
    size_t scheduler_stack_size_ = 0;
};

// Installs the SIGSEGV/SIGBUS/SIGFPE handler that turns a fault inside a fiber into a block error and
// passes every other fault on to the handler installed before it.
void InstallFaultHandler();
// Gives the calling (worker) thread an alternate signal stack, so a fiber's stack overflow can be reported.
void PrepareWorkerThread();

}  // namespace tome_emu
