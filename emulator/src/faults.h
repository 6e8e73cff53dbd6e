// faults.h: failures a test injects to drive the engine through its recovery paths (tomeEmuInject*), and the
// sticky context errors of a real GPU (tomeEmuSetStickyErrors). Injections are per host thread, so a test that
// injects does not disturb tests running beside it; sticky errors are per context, i.e. process-wide.
#pragma once
#include <cstddef>

#include "status.h"

namespace tome_emu {

// Every device allocation (cuMemAlloc, cuMemAllocAsync, cuBLAS's own workspace) asks first: an injected failure for
// an allocation of `bytes` on this thread, or success.
Status InjectedAllocationFailure(size_t bytes);

// cuLaunchKernel asks: true when this launch of `kernel` on this thread is the one to fault.
bool TakeInjectedLaunchFault(const char* kernel);

// Report() tells it of every error the host sees; with sticky errors on, the first of the kinds that corrupt a real
// GPU context (illegal address, assert, misaligned address, launch failure) is kept until the context is reset.
void NoteReportedError(const Status& status);
// The kept error, restated for a later call (Ready fails every call that needs the context with it); or success.
Status StickyError(const char* api);
// The primary context was reset (its last retain released): the kept error goes with it.
void ClearStickyError();

}  // namespace tome_emu
