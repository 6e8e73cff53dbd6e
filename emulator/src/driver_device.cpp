// driver_device.cpp: initialization, errors, the device and its primary context (libcuda.so.1 entry points).
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include "driver.h"
#include "faults.h"
#include "kernels.h"
#include "memory.h"
#include "module.h"
#include "pool.h"
#include "stream.h"

namespace tome_emu {

PrimaryContext primary_context;

namespace {

std::atomic<bool> initialized{false};
std::mutex context_gate;
thread_local void* current_context = nullptr;

constexpr int kDriverVersion = 12000;   // CUDA 12.0: loads NVRTC 11.8's CUBINs and PTX up to ISA 8.0
const char kDeviceName[] = "ToMe CUDA emulator (sm_90 on the CPU; a test device, not a GPU)";

// CUdevice_attribute values (cuda.h) of an sm_90 part (H100 SXM); anything else answers 0.
int Attribute(int attribute)
{
    switch (attribute) {
    case 1: return kMaxThreadsPerBlock;          // MAX_THREADS_PER_BLOCK
    case 2: case 3: return kMaxThreadsPerBlock;  // MAX_BLOCK_DIM_X, _Y
    case 4: return kMaxBlockDimZ;                // MAX_BLOCK_DIM_Z
    case 5: return 0x7fffffff;                   // MAX_GRID_DIM_X
    case 6: case 7: return kMaxGridDimYZ;        // MAX_GRID_DIM_Y, _Z
    case 8: return kDefaultSharedPerBlock;       // MAX_SHARED_MEMORY_PER_BLOCK
    case 9: return 65536;                        // TOTAL_CONSTANT_MEMORY
    case 10: return 32;                          // WARP_SIZE
    case 11: return 0x7fffffff;                  // MAX_PITCH
    case 12: return kRegistersPerSm;             // MAX_REGISTERS_PER_BLOCK
    case 13: return 1980000;                     // CLOCK_RATE (kHz)
    case 14: case 30: return 512;                // TEXTURE_ALIGNMENT, SURFACE_ALIGNMENT
    case 15: case 19: case 31: case 41: return 1;   // GPU_OVERLAP, CAN_MAP_HOST_MEMORY, CONCURRENT_KERNELS, UNIFIED_ADDRESSING
    case 16: return 132;                         // MULTIPROCESSOR_COUNT
    case 36: return 2619000;                     // MEMORY_CLOCK_RATE (kHz)
    case 37: return 5120;                        // GLOBAL_MEMORY_BUS_WIDTH
    case 38: return 50 * 1024 * 1024;            // L2_CACHE_SIZE
    case 39: return 2048;                        // MAX_THREADS_PER_MULTIPROCESSOR
    case 40: return 2;                           // ASYNC_ENGINE_COUNT
    case 75: return 9;                           // COMPUTE_CAPABILITY_MAJOR
    case 76: return 0;                           // COMPUTE_CAPABILITY_MINOR
    case 78: case 79: case 80: return 1;         // STREAM_PRIORITIES, GLOBAL_L1_CACHE, LOCAL_L1_CACHE
    case 81: return 228 * 1024;                  // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
    case 82: return kRegistersPerSm;             // MAX_REGISTERS_PER_MULTIPROCESSOR
    case 97: return kMaxSharedPerBlockOptin;     // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    case 106: return 32;                         // MAX_BLOCKS_PER_MULTIPROCESSOR
    case 111: return 1024;                       // RESERVED_SHARED_MEMORY_PER_BLOCK
    case 115: return 1;                          // MEMORY_POOLS_SUPPORTED
    default: return 0;
    }
}

Status CheckDevice(int device) { return device == 0 ? Status{} : Fail(kInvalidDevice, Format("device %d does not exist (one device)", device)); }

}  // namespace

void* ContextHandle() { return &primary_context; }

bool Initialized() { return initialized.load(); }

namespace {
// The calling thread's log of entry points, while a test asks for it (tomeEmuLogCalls): what the engine asked the
// driver to do, e.g. that a captured forward allocates, synchronizes and loads nothing.
thread_local bool logging_calls = false;
thread_local std::string call_log;
}  // namespace

Status Ready(bool needs_context, const char* api)
{
    if (logging_calls && call_log.size() < (64u << 20)) {
        call_log += api;
        call_log += '\n';
    }
    if (!initialized.load())
        return Fail(kNotInitialized, Format("%s before cuInit", api));
    if (!needs_context)
        return {};
    if (current_context == nullptr)
        return Fail(kInvalidContext, Format("%s with no current context on this thread (cuCtxSetCurrent)", api));
    std::lock_guard<std::mutex> lock(context_gate);
    if (primary_context.retains == 0)
        return Fail(kInvalidContext, Format("%s in a primary context that was released", api));
    return StickyError(api);
}

}  // namespace tome_emu

using namespace tome_emu;

TOME_EMU_EXPORT int cuInit(unsigned int flags)
{
    if (flags != 0)
        return Report(Fail(kInvalidValue, "cuInit flags must be 0"));
    WorkerPool::Get();
    initialized = true;
    return kSuccess;
}

TOME_EMU_EXPORT int cuDriverGetVersion(int* version)
{
    if (version == nullptr)
        return Report(Fail(kInvalidValue, "null version"));
    *version = kDriverVersion;
    return kSuccess;
}

TOME_EMU_EXPORT int cuGetErrorName(int error, const char** name)
{
    if (name == nullptr)
        return kInvalidValue;
    *name = ErrorName(error);
    return *name == nullptr ? kInvalidValue : kSuccess;
}

TOME_EMU_EXPORT int cuGetErrorString(int error, const char** text)
{
    if (text == nullptr)
        return kInvalidValue;
    *text = DescribeWithDetail(error);
    return *text == nullptr ? kInvalidValue : kSuccess;
}

TOME_EMU_EXPORT int cuDeviceGetCount(int* count)
{
    TOME_EMU_CHECK(Ready(false, "cuDeviceGetCount"));
    *count = 1;
    return kSuccess;
}

TOME_EMU_EXPORT int cuDeviceGet(int* device, int ordinal)
{
    TOME_EMU_CHECK(Ready(false, "cuDeviceGet"));
    TOME_EMU_CHECK(CheckDevice(ordinal));
    *device = ordinal;
    return kSuccess;
}

TOME_EMU_EXPORT int cuDeviceGetName(char* name, int length, int device)
{
    TOME_EMU_CHECK(Ready(false, "cuDeviceGetName"));
    TOME_EMU_CHECK(CheckDevice(device));
    if (name == nullptr || length <= 0)
        return Report(Fail(kInvalidValue, "no room for the device name"));
    std::strncpy(name, kDeviceName, (size_t)length - 1);
    name[length - 1] = '\0';
    return kSuccess;
}

TOME_EMU_EXPORT int cuDeviceGetAttribute(int* value, int attribute, int device)
{
    TOME_EMU_CHECK(Ready(false, "cuDeviceGetAttribute"));
    TOME_EMU_CHECK(CheckDevice(device));
    if (value == nullptr || attribute < 1 || attribute > 143)
        return Report(Fail(kInvalidValue, Format("%d is not a CUdevice_attribute", attribute)));
    *value = Attribute(attribute);
    return kSuccess;
}

TOME_EMU_EXPORT int cuDeviceTotalMem_v2(size_t* bytes, int device)
{
    TOME_EMU_CHECK(Ready(false, "cuDeviceTotalMem"));
    TOME_EMU_CHECK(CheckDevice(device));
    *bytes = Memory::Get().Total();
    return kSuccess;
}

TOME_EMU_EXPORT int cuDevicePrimaryCtxRetain(void** context, int device)
{
    TOME_EMU_CHECK(Ready(false, "cuDevicePrimaryCtxRetain"));
    TOME_EMU_CHECK(CheckDevice(device));
    std::lock_guard<std::mutex> lock(context_gate);
    ++primary_context.retains;
    *context = ContextHandle();
    return kSuccess;
}

// Releasing the last retain resets the context: its memory, streams and modules go, as with the real driver.
TOME_EMU_EXPORT int cuDevicePrimaryCtxRelease_v2(int device)
{
    TOME_EMU_CHECK(Ready(false, "cuDevicePrimaryCtxRelease"));
    TOME_EMU_CHECK(CheckDevice(device));
    std::unique_lock<std::mutex> lock(context_gate);
    if (primary_context.retains == 0)
        return Report(Fail(kInvalidContext, "the primary context is not retained"));
    if (--primary_context.retains == 0) {
        lock.unlock();
        StreamSet::Get().Reset();
        Memory::Get().FreeAll();
        ClearStickyError();
    }
    return kSuccess;
}

TOME_EMU_EXPORT int cuCtxSetCurrent(void* context)
{
    TOME_EMU_CHECK(Ready(false, "cuCtxSetCurrent"));
    if (context != nullptr && context != ContextHandle())
        return Report(Fail(kInvalidContext, Format("%p is not a context of this driver", context)));
    current_context = context;
    return kSuccess;
}

TOME_EMU_EXPORT int cuCtxGetCurrent(void** context)
{
    TOME_EMU_CHECK(Ready(false, "cuCtxGetCurrent"));
    *context = current_context;
    return kSuccess;
}

TOME_EMU_EXPORT int cuCtxSynchronize()
{
    TOME_EMU_CHECK(Ready(true, "cuCtxSynchronize"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuCtxSynchronize"));
    return Report(StreamSet::Get().SynchronizeAll());
}

// ---- emulator-specific entry points -------------------------------------------------------------------

// What this driver is: callers (tome devices, the tests) tell the emulator from a GPU by this export.
TOME_EMU_EXPORT const char* tomeEmuDescribe()
{
    static const std::string text = Format("ToMe CUDA emulator: sm_90 on the CPU, %d worker threads, kernels in %s",
                                           WorkerPool::Get().Threads(), KernelDirectory().c_str());
    return text.c_str();
}

// Modules this thread loads from now on resolve their kernels in `directory` (null: the default);
// the planted-bug tests run a copy of the kernels this way.
TOME_EMU_EXPORT void tomeEmuSetKernelDirectory(const char* directory) { SetThreadKernelDirectory(directory); }

// Launches this thread queues from now on order their threads this way (0 forward, 1 reverse, 2 random with
// `seed`; -1: TOME_EMU_ORDER again); the emulator's own tests compare orders.
TOME_EMU_EXPORT void tomeEmuSetThreadOrder(int order, unsigned long long seed) { SetThreadOrder(order, seed); }

// Starts (1) or stops (0) logging the entry points this thread calls, one name a line, clearing the log either way.
TOME_EMU_EXPORT void tomeEmuLogCalls(int enable)
{
    logging_calls = enable != 0;
    call_log.clear();
}

// The log so far (null-terminated, valid until this thread's next call into the emulator), then an empty log.
TOME_EMU_EXPORT const char* tomeEmuTakeCallLog()
{
    static thread_local std::string taken;
    taken.swap(call_log);
    call_log.clear();
    return taken.c_str();
}
