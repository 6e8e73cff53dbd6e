// block.cpp: running one thread block as fibers (see block.h); synchronization lives in sync.cpp.
#include "block.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "kernels.h"
#include "memory.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" void tome_emu_switch(void** from, void* to);

namespace tome_emu {

namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kHeaderBytes = 4096;   // the Fiber, then one guard page below the stack

thread_local BlockRunner* current_runner = nullptr;

// Where a fault inside a fiber is parked between the signal handler and the scheduler (see Run).
struct FaultRecord {
    int signal;
    uintptr_t address, pc;
    bool write;
    int thread;
};
thread_local FaultRecord fault_record;

TOME_EMU_NORETURN void FiberMain()
{
    auto* fiber = static_cast<Fiber*>(self());
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    fiber->runner->plan()->entry->launch(fiber->runner->plan()->params);
    fiber->runner->Exit(fiber);
}

const char* SignalName(int signal)
{
    switch (signal) {
    case SIGSEGV: return "invalid memory access";
    case SIGBUS: return "bus error (misaligned or unmapped access)";
    case SIGFPE: return "arithmetic exception (integer division by zero)";
    default: return "signal";
    }
}

}  // namespace

BlockRunner::BlockRunner() = default;

BlockRunner::~BlockRunner()
{
    if (regions_ != nullptr)
        munmap(regions_, mapped_bytes_);
}

BlockRunner* BlockRunner::Current() { return current_runner; }

void BlockRunner::EnsureFibers(int count)
{
    if (capacity_ >= count)
        return;
    // All 1024 fibers at once: address space only, until a fiber touches its pages.
    mapped_bytes_ = (size_t)(kMaxThreads + 1) * kFiberRegionBytes;
    void* mapping = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) {
        mapped_bytes_ = 0;
        return;
    }
    const uintptr_t aligned = ((uintptr_t)mapping + kFiberRegionBytes - 1) & ~(uintptr_t)(kFiberRegionBytes - 1);
    unsigned char* base = (unsigned char*)aligned;
    regions_ = (unsigned char*)mapping;
    fibers_.resize(kMaxThreads);
    for (int i = 0; i < kMaxThreads; ++i) {
        unsigned char* region = base + (size_t)i * kFiberRegionBytes;
        mprotect(region + kHeaderBytes, kHeaderBytes, PROT_NONE);   // a stack overflow faults here
        static_assert(sizeof(Fiber) + 15 * 192 <= kHeaderBytes, "a fiber's header fits its page at every offset");
        fibers_[i] = new (region + HeaderOffset((uintptr_t)region)) Fiber();
        fibers_[i]->region = region;
    }
    capacity_ = kMaxThreads;
}

void BlockRunner::Start(Fiber* fiber)
{
    // The initial frame tome_emu_switch pops: six callee-saved registers, then FiberMain as the return
    // address, placed so FiberMain starts with the stack alignment of a called function. Stack tops are
    // staggered like the headers, for the caches' sake.
#if defined(__SANITIZE_ADDRESS__)
    // The frames of the fiber that ran here last were never returned from: clear their redzones.
    __asan_unpoison_memory_region(fiber->region + 2 * kHeaderBytes, kFiberRegionBytes - 2 * kHeaderBytes);
#endif
    auto** top = (void**)(fiber->region + kFiberRegionBytes - 64 - 16 * (fiber->index % 61));
    for (int i = 0; i < 6; ++i)
        top[i] = nullptr;
    top[6] = (void*)&FiberMain;
    fiber->sp = top;
}

// Leaves `fiber` for the next ready fiber, directly (one switch, not two through the scheduler), or for the
// scheduler when none is ready or the block has failed.
void BlockRunner::Yield(Fiber* fiber)
{
    Fiber* next = nullptr;
    if (error_.ok())
        TakeReady(&next);
    if (next == fiber) {
        fiber->state = Fiber::State::Running;
        return;
    }
    if (next != nullptr) {
        next->state = Fiber::State::Running;
        running_ = next;
    }
    void* target = next != nullptr ? next->sp : scheduler_sp_;
#if defined(__SANITIZE_ADDRESS__)
    if (next != nullptr)
        __sanitizer_start_switch_fiber(&fiber->asan_fake_stack, next->region + 2 * kHeaderBytes, kFiberRegionBytes - 2 * kHeaderBytes);
    else
        __sanitizer_start_switch_fiber(&fiber->asan_fake_stack, scheduler_stack_, scheduler_stack_size_);
#endif
    tome_emu_switch(&fiber->sp, target);
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(fiber->asan_fake_stack, nullptr, nullptr);
#endif
}

uint64_t BlockRunner::NextRandom()
{
    // splitmix64: cheap, and plenty for choosing an order
    uint64_t z = (random_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

bool BlockRunner::TakeReady(Fiber** fiber)
{
    if (ready_head_ == ready_tail_)
        return false;
    *fiber = fibers_[ready_[ready_head_++ % kReadyCapacity]];
    return true;
}

void BlockRunner::PushInOrder(int* indices, int count, bool first)
{
    if (plan_->order == ThreadOrder::Reverse) {
        std::reverse(indices, indices + count);
    } else if (plan_->order == ThreadOrder::Random && count > 1) {
        if (first) {
            std::rotate(indices, indices + NextRandom() % (uint64_t)count, indices + count);
        } else {
            for (int i = count - 1; i > 0; --i)
                std::swap(indices[i], indices[NextRandom() % (uint64_t)(i + 1)]);
        }
    }
    for (int i = 0; i < count; ++i) {
        const int index = first ? indices[count - 1 - i] : indices[i];
        fibers_[index]->state = Fiber::State::Ready;
        if (first)
            ready_[--ready_head_ % kReadyCapacity] = index;
        else
            ready_[ready_tail_++ % kReadyCapacity] = index;
    }
}

Status BlockRunner::Run(const LaunchPlan& plan, Dim3 block_idx)
{
    plan_ = &plan;
    block_idx_ = block_idx;
    count_ = (int)(plan.block.x * plan.block.y * plan.block.z);
    EnsureFibers(count_);
    if (capacity_ < count_)
        return Fail(kLaunchOutOfResources, "cannot map fiber stacks for the block");

    // Shared memory starts as poison; so does the dynamic part past what the launch asked for.
    const SharedMemory shared = SharedFor(*plan.library);
    if (shared.tls != nullptr)
        Poison(shared.tls, shared.tls_size);

    warp_count_ = (count_ + 31) / 32;
    for (int w = 0; w < warp_count_; ++w) {
        const int lanes = std::min(32, count_ - w * 32);
        warps_[w].present = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
        warps_[w].exited = 0;
        warps_[w].group_count = 0;
    }
    const unsigned int bx = plan.block.x, by = plan.block.y;
    for (int i = 0; i < count_; ++i) {
        Fiber* fiber = fibers_[i];
        fiber->thread_idx = Dim3{(unsigned)i % bx, ((unsigned)i / bx) % by, (unsigned)i / (bx * by)};
        fiber->block_idx = block_idx;
        fiber->block_dim = plan.block;
        fiber->grid_dim = plan.grid;
        fiber->lane = (unsigned)i % 32;
        fiber->warp = (unsigned)i / 32;
        fiber->runner = this;
        fiber->index = i;
        fiber->file = nullptr;
        fiber->line = 0;
        Start(fiber);
    }
    exited_ = at_barrier_ = 0;
    error_ = Status{};
    const uint64_t linear = block_idx.x + (uint64_t)plan.grid.x * (block_idx.y + (uint64_t)plan.grid.y * block_idx.z);
    random_ = plan.seed ^ (linear * 0x9e3779b97f4a7c15ull);
    ready_head_ = ready_tail_ = 0;
    int all[1024];
    for (int i = 0; i < count_; ++i)
        all[i] = i;
    PushInOrder(all, count_, false);

    current_runner = this;
#if defined(__SANITIZE_ADDRESS__)
    if (scheduler_stack_ == nullptr) {
        pthread_attr_t attributes;
        pthread_getattr_np(pthread_self(), &attributes);
        pthread_attr_getstack(&attributes, &scheduler_stack_, &scheduler_stack_size_);
        pthread_attr_destroy(&attributes);
    }
#endif
    if (sigsetjmp(fault_jump_, 1) != 0) {
        // Back from the fault handler: the faulting fiber and the rest of the block are abandoned.
        current_runner = nullptr;
        running_ = nullptr;
        std::string what = Format("%s: %s %s", SignalName(fault_record.signal), fault_record.write ? "write to" : "read of",
                                  Memory::Get().Describe(fault_record.address).c_str());
        Dl_info info{};
        if (dladdr((void*)fault_record.pc, &info) != 0 && info.dli_sname != nullptr)
            what += Format(" (in %s+0x%llx)", info.dli_sname, (unsigned long long)(fault_record.pc - (uintptr_t)info.dli_saddr));
        const Fiber* fiber = fibers_[fault_record.thread];
        if (fiber->file != nullptr)
            what += Format(", after %s", Where(fiber).c_str());
        return Fail(fault_record.signal == SIGSEGV ? kIllegalAddress : kLaunchFailed, ThreadName(fault_record.thread) + ": " + what);
    }
    for (;;) {
        Fiber* fiber = nullptr;
        while (TakeReady(&fiber)) {
            fiber->state = Fiber::State::Running;
            running_ = fiber;
#if defined(__SANITIZE_ADDRESS__)
            __sanitizer_start_switch_fiber(&scheduler_fake_stack_, fiber->region + 2 * kHeaderBytes, kFiberRegionBytes - 2 * kHeaderBytes);
#endif
            tome_emu_switch(&scheduler_sp_, fiber->sp);
#if defined(__SANITIZE_ADDRESS__)
            __sanitizer_finish_switch_fiber(scheduler_fake_stack_, nullptr, nullptr);
#endif
            running_ = nullptr;
            if (!error_.ok()) {
                current_runner = nullptr;
                return error_;
            }
        }
        if (exited_ == count_)
            break;
        Status status = at_barrier_ + exited_ == count_ ? ReleaseBarrier()
                                                        : Fail(kLaunchFailed, "deadlock: no thread can continue. " + DescribeWaits());
        if (!status.ok()) {
            current_runner = nullptr;
            return status;
        }
    }
    current_runner = nullptr;

    if (shared.dynamic != nullptr && plan.dynamic_shared < shared.dynamic_capacity) {
        const size_t guard = std::min<size_t>(1024, shared.dynamic_capacity - plan.dynamic_shared);
        size_t bad = 0;
        if (!IsPoisoned(shared.dynamic + plan.dynamic_shared, guard, &bad))
            return Fail(kIllegalAddress, Format("a thread wrote past the end of the %u bytes of dynamic shared memory (byte %zu after it changed)",
                                                plan.dynamic_shared, bad));
    }
    return {};
}

void BlockRunner::Abort(Fiber* fiber, int code, const std::string& what)
{
    error_ = Fail(code, what);
    Yield(fiber);   // with an error set, this returns to the scheduler, which abandons the block
    __builtin_unreachable();
}

void BlockRunner::Trap(Fiber* fiber, int code, const std::string& what) { Abort(fiber, code, ThreadName(fiber->index) + ": " + what); }

void BlockRunner::Fault(int signal, uintptr_t address, bool write, uintptr_t pc)
{
    fault_record = FaultRecord{signal, address, pc, write, running_ != nullptr ? running_->index : 0};
    siglongjmp(fault_jump_, 1);
}

#if !defined(__SANITIZE_ADDRESS__)   // AddressSanitizer reports faults itself
namespace {

struct sigaction previous[3];
const int kSignals[3] = {SIGSEGV, SIGBUS, SIGFPE};

void OnFault(int signal, siginfo_t* info, void* context)
{
    BlockRunner* runner = BlockRunner::Current();
    if (runner != nullptr) {
        auto* uc = static_cast<ucontext_t*>(context);
        const bool write = signal == SIGSEGV && (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
        runner->Fault(signal, (uintptr_t)info->si_addr, write, (uintptr_t)uc->uc_mcontext.gregs[REG_RIP]);
    }
    for (int i = 0; i < 3; ++i) {
        if (kSignals[i] != signal)
            continue;
        if (previous[i].sa_flags & SA_SIGINFO) {
            previous[i].sa_sigaction(signal, info, context);
        } else if (previous[i].sa_handler == SIG_DFL || previous[i].sa_handler == SIG_IGN) {
            sigaction(signal, &previous[i], nullptr);   // the faulting instruction runs again, now fatally
        } else {
            previous[i].sa_handler(signal);
        }
    }
}

}  // namespace
#endif

void InstallFaultHandler()
{
#if !defined(__SANITIZE_ADDRESS__)
    static std::once_flag once;
    std::call_once(once, [] {
        for (int i = 0; i < 3; ++i) {
            struct sigaction action {};
            action.sa_sigaction = &OnFault;
            action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
            sigemptyset(&action.sa_mask);
            sigaction(kSignals[i], &action, &previous[i]);
        }
    });
#endif
}

void PrepareWorkerThread()
{
    const size_t size = 64 * 1024;
    stack_t stack{};
    stack.ss_sp = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack.ss_size = size;
    if (stack.ss_sp != MAP_FAILED)
        sigaltstack(&stack, nullptr);
}

}  // namespace tome_emu
