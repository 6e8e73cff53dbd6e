// faults.cpp: injected failures and sticky context errors (see faults.h).
#include "faults.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include "driver.h"

namespace tome_emu {

namespace {

// Of the allocations of at least min_bytes, `skip` succeed, then `fail` fail (−1: every one until cleared).
struct AllocationInjection {
    long long skip = 0, fail = 0;
    size_t min_bytes = 0;
    long long seen = 0;
};
thread_local AllocationInjection allocation_injection;

// The launch of `kernel` (empty: any kernel) after `skip` such launches faults, once.
struct LaunchInjection {
    bool armed = false;
    std::string kernel;
    long long skip = 0;
};
thread_local LaunchInjection launch_injection;

std::atomic<bool> sticky_enabled{false};
std::mutex sticky_gate;
Status sticky;

bool CorruptsContext(int code) { return code == kIllegalAddress || code == kAssert || code == kMisalignedAddress || code == kLaunchFailed; }

}  // namespace

Status InjectedAllocationFailure(size_t bytes)
{
    AllocationInjection& injection = allocation_injection;
    if (injection.fail == 0 || bytes < injection.min_bytes)
        return {};
    const long long index = injection.seen++;
    if (index < injection.skip)
        return {};
    if (injection.fail > 0)
        --injection.fail;
    return Fail(kOutOfMemory, Format("allocating %zu bytes: injected failure (allocation %lld of at least %zu bytes on this thread, "
                                     "tomeEmuInjectAllocationFailure)", bytes, index + 1, injection.min_bytes));
}

bool TakeInjectedLaunchFault(const char* kernel)
{
    LaunchInjection& injection = launch_injection;
    if (!injection.armed || (!injection.kernel.empty() && injection.kernel != kernel))
        return false;
    if (injection.skip-- > 0)
        return false;
    injection.armed = false;
    return true;
}

void NoteReportedError(const Status& status)
{
    if (!sticky_enabled.load() || !CorruptsContext(status.code))
        return;
    std::lock_guard<std::mutex> lock(sticky_gate);
    if (sticky.ok())
        sticky = status;
}

Status StickyError(const char* api)
{
    if (!sticky_enabled.load())
        return {};
    std::lock_guard<std::mutex> lock(sticky_gate);
    if (sticky.ok())
        return {};
    return Fail(sticky.code, Format("%s: the context is unusable after an earlier error, as on a GPU (release every retain of the "
                                    "primary context to reset it): %s", api, sticky.detail.c_str()));
}

void ClearStickyError()
{
    std::lock_guard<std::mutex> lock(sticky_gate);
    sticky = Status{};
}

}  // namespace tome_emu

using namespace tome_emu;

// On this thread, of the next device allocations of at least `min_bytes`, let `skip` succeed, then fail `count` of them
// with CUDA_ERROR_OUT_OF_MEMORY (−1: all, until called again); count 0 clears.
TOME_EMU_EXPORT void tomeEmuInjectAllocationFailure(long long skip, unsigned long long min_bytes, long long count)
{
    allocation_injection = AllocationInjection{skip < 0 ? 0 : skip, count, (size_t)min_bytes, 0};
}

// On this thread, the launch of `kernel` (null: any kernel) after `skip` such launches faults when it runs, with
// CUDA_ERROR_ILLEGAL_ADDRESS, as a kernel reading past the end of its buffer does; once. skip < 0 disarms.
TOME_EMU_EXPORT void tomeEmuInjectLaunchFault(const char* kernel, long long skip)
{
    launch_injection = LaunchInjection{skip >= 0, kernel != nullptr ? kernel : "", skip};
}

// Sticky errors on (1) or off (0, the default: a fault is reported and the stream goes on, which the emulator's own
// tests rely on). On, an illegal address, assert, misaligned address or launch failure, once reported, fails every
// later call that needs the context, as a real GPU's context is lost, until the primary context's last retain is
// released. Process-wide: a test that turns it on runs alone.
TOME_EMU_EXPORT void tomeEmuSetStickyErrors(int on)
{
    sticky_enabled = on != 0;
    if (on == 0)
        ClearStickyError();
}
