// driver.h: what the exported driver entry points share: initialization, the primary context, and the
// checks every call makes before doing anything.
#pragma once
#include "status.h"

#define TOME_EMU_EXPORT extern "C" __attribute__((visibility("default")))

namespace tome_emu {

// The one device's primary context; its handle is stable, its resources go when the last retain is released.
struct PrimaryContext {
    int retains = 0;
};
extern PrimaryContext primary_context;
void* ContextHandle();

bool Initialized();
// cuInit was called (else CUDA_ERROR_NOT_INITIALIZED), and for `needs_context`, a live context is
// current on this thread (else CUDA_ERROR_INVALID_CONTEXT, as the real driver answers).
Status Ready(bool needs_context, const char* api);

}  // namespace tome_emu

// Returns early from an entry point with the status of a failed check or step.
#define TOME_EMU_CHECK(expression)                                   \
    do {                                                             \
        ::tome_emu::Status status_ = (expression);                   \
        if (!status_.ok())                                           \
            return ::tome_emu::Report(status_);                      \
    } while (0)
