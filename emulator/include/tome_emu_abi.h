// tome_emu_abi.h: what a host-compiled kernel library and the emulated driver (libcuda.so.1) share.
//
// Every CUDA thread of a block runs as a fiber on one host thread. A fiber's stack lives in an aligned
// region whose first page holds its FiberHeader, so a kernel finds "its" thread from the stack pointer
// alone (no thread-local lookup, no global state): self() masks the frame address.
// Synchronization (barriers, warp collectives) is a call into the driver, which switches fibers.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace tome_emu {

struct Dim3 {
    unsigned int x, y, z;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kFiberRegionBytes = size_t(1) << 20;   // instrumented frames are larger
#else
constexpr size_t kFiberRegionBytes = size_t(1) << 18;   // 256 KiB: header page, guard page, stack
#endif

// The part of a fiber that kernels read; the driver's Fiber extends it.
struct FiberHeader {
    Dim3 thread_idx;
    Dim3 block_idx;
    Dim3 block_dim;
    Dim3 grid_dim;
    unsigned int lane;   // threadIdx linearized, modulo 32
    unsigned int warp;   // threadIdx linearized, divided by 32
};

// Where a fiber's header sits in the first page of its region: staggered by region, so the headers (and the
// stacks, see block.cpp) of a block's fibers do not all fall into the same cache sets.
inline uintptr_t HeaderOffset(uintptr_t region) { return ((region / kFiberRegionBytes) & 15u) * 192u; }

inline FiberHeader* self()
{
    const uintptr_t region = reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) & ~(uintptr_t)(kFiberRegionBytes - 1);
    return reinterpret_cast<FiberHeader*>(region + HeaderOffset(region));
}

// A warp collective: every lane of `mask` deposits `in` and waits; once all have arrived (same op, same
// op_arg), `combine` runs once with every lane's deposit, indexed by lane, and fills each lane's `out`.
// It returns null, or a sentence saying why the operands are invalid (the block then fails with it).
// Shuffles, votes, __syncwarp and (later) the matrix instructions are all one of these.
struct WarpOp {
    const char* name;
    const char* (*combine)(const WarpOp* op, unsigned int mask, int op_arg, const void* const* in, void* const* out);
};

// Ops of one kernel launch's barrier: what __syncthreads_{or,and,count} reduce.
enum BarrierKind : int { kBarrierSync = 0, kBarrierOr = 1, kBarrierAnd = 2, kBarrierCount = 3 };

// One kernel entry of a kernel library: its name, a launcher that unpacks the parameter buffer, and the
// parameter layout the launcher expects (checked against the CUBIN's when a module is loaded).
struct KernelEntry {
    const char* name;
    void (*launch)(const void* const* params);
    int param_count;
    const unsigned short* param_sizes;
    const unsigned char* param_is_pointer;   // 0: not a pointer, 1: pointer to const, 2: pointer to mutable data
};

// What a kernel library exports (tome_emu_kernel_library): its entries, and its dynamic shared memory.
struct KernelLibrary {
    int abi_version;
    const char* source_file;
    int entry_count;
    const KernelEntry* entries;
    void* (*tls_anchor)();           // touches the library's thread-local block (the shared memory) on this thread
    void* (*dynamic_shared)();       // this thread's dynamic shared memory (all extern __shared__ arrays)
    size_t dynamic_shared_capacity;  // bytes behind dynamic_shared()
};

constexpr int kAbiVersion = 1;

}  // namespace tome_emu

// AddressSanitizer unpoisons "the thread's stack" before every call to a noreturn function, which on a fiber's
// stack trips over its own bookkeeping; in that build the fiber-side noreturn functions are plain functions.
#if defined(__SANITIZE_ADDRESS__)
#define TOME_EMU_NORETURN
#else
#define TOME_EMU_NORETURN [[noreturn]]
#endif

// The call site of a synchronization, as default arguments, for the emulator's messages.
#define TOME_EMU_SITE const char* file = __builtin_FILE(), int line = __builtin_LINE()

extern "C" {
// __syncthreads and its reductions: returns the reduction (or 0).
int tome_emu_barrier(int kind, int predicate, const char* file, int line);
// A warp collective (see WarpOp); blocks the calling fiber until the lanes of `mask` have all arrived.
void tome_emu_warp_collective(const tome_emu::WarpOp* op, unsigned int mask, int op_arg, const void* in, void* out,
                              const char* file, int line);
// Stops the block with an error (assert, __trap); never returns.
TOME_EMU_NORETURN void tome_emu_trap(const char* what, const char* file, int line);
}
