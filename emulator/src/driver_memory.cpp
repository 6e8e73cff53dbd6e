// driver_memory.cpp: allocation, copies and fills (libcuda.so.1 entry points), with the CUDA driver's
// synchronization behaviour ("API synchronization behavior" in the driver API reference):
//   cuMemcpyHtoD    pageable source: the legacy stream is synchronized, the source is staged, and the call
//                   returns before the copy reaches the device; pinned source: complete on return.
//   cuMemcpyDtoH    complete on return (after the legacy stream's earlier work).
//   cuMemcpyDtoD, cuMemsetD8/D32   queued on the legacy stream; asynchronous to the host.
//   *Async          queued on the given stream; a pageable source is staged at the call, a pageable
//                   destination makes the copy synchronous.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "driver.h"
#include "memory.h"
#include "stream.h"

using namespace tome_emu;

namespace {

std::shared_ptr<Stream> Legacy()
{
    Status ignored;
    return StreamSet::Get().Resolve(nullptr, &ignored);
}

// The default memory pool: its release threshold, and the stream-ordered allocations it holds.
struct PoolState {
    std::mutex gate;
    unsigned long long release_threshold = 0, reserved = 0;
    std::map<uintptr_t, size_t> allocations;
} pool_state;

Status QueueCopy(const std::shared_ptr<Stream>& stream, const char* api, void* destination, const void* source, size_t bytes,
                 bool stage_source, uint64_t* sequence = nullptr)
{
    Op op;
    op.what = api;
    op.accesses = {Access{(uintptr_t)source, false}, Access{(uintptr_t)destination, true}};
    if (stage_source) {
        auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char*)source, (const unsigned char*)source + bytes);
        op.run = [destination, staged] {
            std::memcpy(destination, staged->data(), staged->size());
            return Status{};
        };
    } else {
        op.run = [destination, source, bytes] {
            std::memmove(destination, source, bytes);
            return Status{};
        };
    }
    return StreamSet::Get().Enqueue(stream, std::move(op), sequence);
}

template <typename T>
Status QueueFill(const std::shared_ptr<Stream>& stream, const char* api, uintptr_t destination, T value, size_t count)
{
    Status status = Memory::Get().CheckDevice(destination, count * sizeof(T), api);
    if (!status.ok())
        return status;
    if (destination % sizeof(T) != 0)
        return Fail(kInvalidValue, Format("%s: 0x%llx is not aligned to %zu bytes", api, (unsigned long long)destination, sizeof(T)));
    Op op;
    op.what = api;
    op.accesses = {Access{destination, true}};
    op.run = [destination, value, count] {
        T* p = reinterpret_cast<T*>(destination);
        for (size_t i = 0; i < count; ++i)
            p[i] = value;
        return Status{};
    };
    return StreamSet::Get().Enqueue(stream, std::move(op));
}

// A queued copy that the host must see completed before the call returns.
Status CopyAndWait(const std::shared_ptr<Stream>& stream, const char* api, void* destination, const void* source, size_t bytes)
{
    if (StreamSet::Get().CaptureStatus(stream) != 0)
        return StreamSet::Get().Invalidate(stream, Fail(kStreamCaptureUnsupported, Format("%s with pageable host memory cannot be captured", api)));
    uint64_t sequence = 0;
    Status status = QueueCopy(stream, api, destination, source, bytes, false, &sequence);
    if (!status.ok())
        return status;
    const Clock clock = Ordering::Get().StreamClock(stream->id());
    stream->Drain(sequence);
    Ordering::Get().HostJoins(clock);
    return stream->TakeError();
}

}  // namespace

TOME_EMU_EXPORT int cuMemAlloc_v2(unsigned long long* pointer, size_t bytes)
{
    TOME_EMU_CHECK(Ready(true, "cuMemAlloc"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuMemAlloc"));
    uintptr_t address = 0;
    TOME_EMU_CHECK(Memory::Get().Allocate(bytes, &address));
    *pointer = address;
    return kSuccess;
}

// Like cudaFree, waits for the device's queued work before the memory goes.
TOME_EMU_EXPORT int cuMemFree_v2(unsigned long long pointer)
{
    TOME_EMU_CHECK(Ready(true, "cuMemFree"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuMemFree"));
    StreamSet::Get().SynchronizeAll(false);   // errors stay with the streams that raised them
    TOME_EMU_CHECK(Memory::Get().Free(pointer));
    Ordering::Get().Forget(pointer);
    return kSuccess;
}

TOME_EMU_EXPORT int cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes)
{
    TOME_EMU_CHECK(Ready(true, "cuMemGetInfo"));
    const size_t total = Memory::Get().Total(), used = Memory::Get().Used();
    *free_bytes = total > used ? total - used : 0;
    *total_bytes = total;
    return kSuccess;
}

// Live device allocations (cuMemAlloc, cuMemAllocAsync, cuBLAS workspaces; not pinned host memory) and their bytes
// (each rounded up to 256): the tests count them to show that nothing leaks.
TOME_EMU_EXPORT void tomeEmuDeviceMemory(long long* allocations, unsigned long long* bytes)
{
    *allocations = (long long)Memory::Get().LiveAllocations();
    *bytes = Memory::Get().Used();
}

TOME_EMU_EXPORT int cuMemAllocAsync(unsigned long long* pointer, size_t bytes, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuMemAllocAsync"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    if (StreamSet::Get().CaptureStatus(stream) != 0)
        return Report(StreamSet::Get().Invalidate(stream, Fail(kNotSupported, "the emulated device does not capture stream-ordered allocations")));
    uintptr_t address = 0;
    TOME_EMU_CHECK(Memory::Get().Allocate(bytes, &address));
    {
        std::lock_guard<std::mutex> lock(pool_state.gate);
        pool_state.allocations[address] = bytes;
        pool_state.reserved += bytes;
    }
    *pointer = address;
    return kSuccess;
}

TOME_EMU_EXPORT int cuMemFreeAsync(unsigned long long pointer, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuMemFreeAsync"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(pointer, 0, "cuMemFreeAsync"));
    Op op;
    op.what = "cuMemFreeAsync";
    op.accesses = {Access{pointer, true}};
    op.run = [pointer] {
        Status freed = Memory::Get().Free(pointer);
        Ordering::Get().Forget(pointer);
        std::lock_guard<std::mutex> lock(pool_state.gate);
        if (auto it = pool_state.allocations.find(pointer); it != pool_state.allocations.end()) {
            pool_state.reserved -= it->second;
            pool_state.allocations.erase(it);
        }
        return freed;
    };
    return Report(StreamSet::Get().Enqueue(stream, std::move(op)));
}

TOME_EMU_EXPORT int cuDeviceGetDefaultMemPool(void** pool, int device)
{
    TOME_EMU_CHECK(Ready(false, "cuDeviceGetDefaultMemPool"));
    if (device != 0)
        return Report(Fail(kInvalidDevice, Format("device %d does not exist", device)));
    *pool = &pool_state;
    return kSuccess;
}

// CUmemPool_attribute: 4 RELEASE_THRESHOLD, 5 RESERVED_MEM_CURRENT, 7 USED_MEM_CURRENT (cuuint64_t each).
TOME_EMU_EXPORT int cuMemPoolSetAttribute(void* pool, int attribute, void* value)
{
    TOME_EMU_CHECK(Ready(true, "cuMemPoolSetAttribute"));
    if (pool != &pool_state || value == nullptr || attribute != 4)
        return Report(Fail(kInvalidValue, Format("memory pool attribute %d cannot be set here", attribute)));
    std::lock_guard<std::mutex> lock(pool_state.gate);
    std::memcpy(&pool_state.release_threshold, value, 8);
    return kSuccess;
}

TOME_EMU_EXPORT int cuMemPoolGetAttribute(void* pool, int attribute, void* value)
{
    TOME_EMU_CHECK(Ready(true, "cuMemPoolGetAttribute"));
    if (pool != &pool_state || value == nullptr || attribute < 1 || attribute > 8)
        return Report(Fail(kInvalidValue, Format("%d is not a memory pool attribute", attribute)));
    std::lock_guard<std::mutex> lock(pool_state.gate);
    unsigned long long answer = attribute == 4 ? pool_state.release_threshold : (attribute == 5 || attribute == 7) ? pool_state.reserved : 0;
    const int enabled = 1;   // the reuse policies (attributes 1-3) are ints, all on
    if (attribute <= 3)
        std::memcpy(value, &enabled, 4);
    else
        std::memcpy(value, &answer, 8);
    return kSuccess;
}

TOME_EMU_EXPORT int cuMemPoolTrimTo(void* pool, size_t)
{
    TOME_EMU_CHECK(Ready(true, "cuMemPoolTrimTo"));
    return pool == &pool_state ? kSuccess : Report(Fail(kInvalidValue, "not a memory pool"));
}

TOME_EMU_EXPORT int cuMemHostAlloc(void** pointer, size_t bytes, unsigned int flags)
{
    TOME_EMU_CHECK(Ready(true, "cuMemHostAlloc"));
    if ((flags & ~7u) != 0)
        return Report(Fail(kInvalidValue, Format("cuMemHostAlloc flags 0x%x", flags)));
    TOME_EMU_CHECK(Memory::Get().AllocateHost(bytes, pointer));
    return kSuccess;
}

TOME_EMU_EXPORT int cuMemFreeHost(void* pointer)
{
    TOME_EMU_CHECK(Ready(true, "cuMemFreeHost"));
    StreamSet::Get().SynchronizeAll(false);
    return Report(Memory::Get().FreeHost(pointer));
}

TOME_EMU_EXPORT int cuMemcpyHtoD_v2(unsigned long long destination, const void* source, size_t bytes)
{
    TOME_EMU_CHECK(Ready(true, "cuMemcpyHtoD"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuMemcpyHtoD"));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(destination, bytes, "cuMemcpyHtoD"));
    if (bytes == 0)
        return kSuccess;
    auto legacy = Legacy();
    if (Memory::Get().IsPinned(source, bytes))
        return Report(CopyAndWait(legacy, "cuMemcpyHtoD", (void*)destination, source, bytes));
    legacy->DrainAll();
    TOME_EMU_CHECK(legacy->TakeError());
    return Report(QueueCopy(legacy, "cuMemcpyHtoD", (void*)destination, source, bytes, true));
}

TOME_EMU_EXPORT int cuMemcpyDtoH_v2(void* destination, unsigned long long source, size_t bytes)
{
    TOME_EMU_CHECK(Ready(true, "cuMemcpyDtoH"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuMemcpyDtoH"));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(source, bytes, "cuMemcpyDtoH"));
    if (bytes == 0)
        return kSuccess;
    return Report(CopyAndWait(Legacy(), "cuMemcpyDtoH", destination, (const void*)source, bytes));
}

TOME_EMU_EXPORT int cuMemcpyDtoD_v2(unsigned long long destination, unsigned long long source, size_t bytes)
{
    TOME_EMU_CHECK(Ready(true, "cuMemcpyDtoD"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuMemcpyDtoD"));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(destination, bytes, "cuMemcpyDtoD destination"));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(source, bytes, "cuMemcpyDtoD source"));
    return bytes == 0 ? kSuccess : Report(QueueCopy(Legacy(), "cuMemcpyDtoD", (void*)destination, (const void*)source, bytes, false));
}

TOME_EMU_EXPORT int cuMemcpyHtoDAsync_v2(unsigned long long destination, const void* source, size_t bytes, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuMemcpyHtoDAsync"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(destination, bytes, "cuMemcpyHtoDAsync"));
    if (bytes == 0)
        return kSuccess;
    const bool pinned = Memory::Get().IsPinned(source, bytes);
    if (!pinned && StreamSet::Get().CaptureStatus(stream) != 0)
        return Report(StreamSet::Get().Invalidate(stream, Fail(kStreamCaptureUnsupported, "cuMemcpyHtoDAsync from pageable host memory cannot be captured")));
    return Report(QueueCopy(stream, "cuMemcpyHtoDAsync", (void*)destination, source, bytes, !pinned));
}

TOME_EMU_EXPORT int cuMemcpyDtoHAsync_v2(void* destination, unsigned long long source, size_t bytes, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuMemcpyDtoHAsync"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(source, bytes, "cuMemcpyDtoHAsync"));
    if (bytes == 0)
        return kSuccess;
    if (!Memory::Get().IsPinned(destination, bytes))
        return Report(CopyAndWait(stream, "cuMemcpyDtoHAsync", destination, (const void*)source, bytes));
    return Report(QueueCopy(stream, "cuMemcpyDtoHAsync", destination, (const void*)source, bytes, false));
}

TOME_EMU_EXPORT int cuMemcpyDtoDAsync_v2(unsigned long long destination, unsigned long long source, size_t bytes, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuMemcpyDtoDAsync"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(destination, bytes, "cuMemcpyDtoDAsync destination"));
    TOME_EMU_CHECK(Memory::Get().CheckDevice(source, bytes, "cuMemcpyDtoDAsync source"));
    return bytes == 0 ? kSuccess : Report(QueueCopy(stream, "cuMemcpyDtoDAsync", (void*)destination, (const void*)source, bytes, false));
}

TOME_EMU_EXPORT int cuMemsetD8_v2(unsigned long long destination, unsigned char value, size_t count)
{
    TOME_EMU_CHECK(Ready(true, "cuMemsetD8"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuMemsetD8"));
    return Report(QueueFill<unsigned char>(Legacy(), "cuMemsetD8", destination, value, count));
}

TOME_EMU_EXPORT int cuMemsetD32_v2(unsigned long long destination, unsigned int value, size_t count)
{
    TOME_EMU_CHECK(Ready(true, "cuMemsetD32"));
    TOME_EMU_CHECK(StreamSet::Get().CheckNotCapturing("cuMemsetD32"));
    return Report(QueueFill<unsigned int>(Legacy(), "cuMemsetD32", destination, value, count));
}

TOME_EMU_EXPORT int cuMemsetD8Async(unsigned long long destination, unsigned char value, size_t count, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuMemsetD8Async"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    return Report(QueueFill<unsigned char>(stream, "cuMemsetD8Async", destination, value, count));
}

TOME_EMU_EXPORT int cuMemsetD32Async(unsigned long long destination, unsigned int value, size_t count, void* stream_handle)
{
    TOME_EMU_CHECK(Ready(true, "cuMemsetD32Async"));
    std::shared_ptr<Stream> stream;
    TOME_EMU_CHECK(StreamSet::Get().Find(stream_handle, &stream));
    return Report(QueueFill<unsigned int>(stream, "cuMemsetD32Async", destination, value, count));
}
