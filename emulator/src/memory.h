// memory.h: device memory of the emulated device: host pages, laid out so that mistakes show.
//
// Every allocation comes from one reserved address range, 256-byte aligned like cuMemAlloc's, and ends
// where its last page ends: a guard page follows, so running off the end faults. The bytes of an
// allocation start as a poison pattern (a NaN as float, a huge index as int); so do the slack bytes up to
// the 256-byte size, which are checked after every kernel that was handed the allocation. Freed memory
// becomes inaccessible and its addresses are never reused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "status.h"

namespace tome_emu {

// Poison for uninitialized device and shared memory: 0x7fbadbad is a NaN as float and 2142952365 as int.
constexpr uint32_t kPoisonWord = 0x7fbadbadu;
void Poison(void* memory, size_t bytes);
// True when every byte of [memory, memory + bytes) still holds the poison pattern (by absolute address).
bool IsPoisoned(const void* memory, size_t bytes, size_t* first_bad);

class Memory {
public:
    static Memory& Get();

    Status Allocate(size_t bytes, uintptr_t* pointer);
    Status Free(uintptr_t pointer);
    Status AllocateHost(size_t bytes, void** pointer);   // page-locked (pinned) host memory
    Status FreeHost(void* pointer);

    // [pointer, pointer + bytes) lies inside one live device allocation; else the error says where it goes wrong.
    Status CheckDevice(uintptr_t pointer, size_t bytes, const char* what) const;
    // True for pinned host memory: copies from it are truly asynchronous, kernels may read it (unified addressing).
    bool IsPinned(const void* pointer, size_t bytes) const;
    // The base of the live device allocation holding `pointer`, or 0.
    uintptr_t BaseOf(uintptr_t pointer) const;
    // A kernel may dereference `pointer`: inside (or one past the end of) a device or pinned allocation.
    bool Accessible(uintptr_t pointer) const;
    // The slack bytes after the allocation holding `pointer` are untouched; else names the overrun.
    Status CheckSlack(uintptr_t pointer, const std::string& culprit) const;
    // Where `address` is relative to the allocations, for fault messages.
    std::string Describe(uintptr_t address) const;

    size_t Used() const;
    size_t LiveAllocations() const;   // device allocations, not pinned host memory
    size_t Total() const { return limit_; }
    void FreeAll();   // the primary context was reset

private:
    Memory();
    struct Allocation {
        uintptr_t map_base;   // first mapped page
        size_t map_bytes;     // mapped bytes, excluding the trailing guard page
        uintptr_t base;       // what the caller got
        size_t size;          // what the caller asked for
        bool pinned;
    };
    const Allocation* Containing(uintptr_t address, const std::map<uintptr_t, Allocation>& in) const;
    void Release(const Allocation& allocation);

    mutable std::mutex gate_;
    uintptr_t range_begin_ = 0, range_end_ = 0, next_ = 0;
    size_t page_ = 4096, limit_ = 0, used_ = 0;
    std::map<uintptr_t, Allocation> live_;    // by map_base
    std::map<uintptr_t, Allocation> freed_;   // recently freed, for fault messages
};

}  // namespace tome_emu
