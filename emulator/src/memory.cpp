// memory.cpp: the emulated device's allocations (see memory.h).
#include "memory.h"

#include "faults.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace tome_emu {

namespace {

constexpr size_t kAlignment = 256;   // cuMemAlloc's guarantee
constexpr size_t kFreedRemembered = 4096;

size_t RoundUp(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// The device's memory: TOME_EMU_MEMORY_BYTES, else half the host's memory up to 80 GiB (an H100's).
size_t MemoryLimit()
{
    if (const char* text = std::getenv("TOME_EMU_MEMORY_BYTES"); text != nullptr && *text != '\0')
        return std::strtoull(text, nullptr, 10);
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const size_t host = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : (size_t)8 << 30;
    const size_t cap = (size_t)80 << 30;
    return host / 2 < cap ? host / 2 : cap;
}

}  // namespace

void Poison(void* memory, size_t bytes)
{
    auto* p = static_cast<unsigned char*>(memory);
    const auto* pattern = reinterpret_cast<const unsigned char*>(&kPoisonWord);
    size_t i = 0;
    for (; i < bytes && ((uintptr_t)(p + i) & 3) != 0; ++i)
        p[i] = pattern[(uintptr_t)(p + i) & 3];
    for (; i + 4 <= bytes; i += 4)
        std::memcpy(p + i, &kPoisonWord, 4);
    for (; i < bytes; ++i)
        p[i] = pattern[(uintptr_t)(p + i) & 3];
}

bool IsPoisoned(const void* memory, size_t bytes, size_t* first_bad)
{
    const auto* p = static_cast<const unsigned char*>(memory);
    const auto* pattern = reinterpret_cast<const unsigned char*>(&kPoisonWord);
    for (size_t i = 0; i < bytes; ++i) {
        if (p[i] != pattern[(uintptr_t)(p + i) & 3]) {
            if (first_bad != nullptr)
                *first_bad = i;
            return false;
        }
    }
    return true;
}

Memory& Memory::Get()
{
    static Memory* memory = new Memory();   // never destroyed: kernels may run during process exit
    return *memory;
}

Memory::Memory()
{
    page_ = (size_t)sysconf(_SC_PAGESIZE);
    limit_ = MemoryLimit();
    // One reserved range, never reused: a stale pointer always lands on an inaccessible page.
    for (size_t reserve = (size_t)4 << 40; reserve >= ((size_t)64 << 30); reserve /= 4) {
        void* range = mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (range != MAP_FAILED) {
            range_begin_ = next_ = (uintptr_t)range;
            range_end_ = range_begin_ + reserve;
            break;
        }
    }
}

Status Memory::Allocate(size_t bytes, uintptr_t* pointer)
{
    if (bytes == 0)
        return Fail(kInvalidValue, "cannot allocate 0 bytes of device memory");
    if (Status injected = InjectedAllocationFailure(bytes); !injected.ok())
        return injected;
    const size_t rounded = RoundUp(bytes, kAlignment);
    const size_t mapped = RoundUp(rounded, page_);
    std::lock_guard<std::mutex> lock(gate_);
    if (used_ + rounded > limit_)
        return Fail(kOutOfMemory, Format("allocating %zu bytes with %zu of %zu in use (set TOME_EMU_MEMORY_BYTES for a larger device)",
                                         bytes, used_, limit_));
    if (range_begin_ == 0 || next_ + mapped + page_ > range_end_)
        return Fail(kOutOfMemory, "the emulated device's address range is exhausted");
    const uintptr_t map_base = next_;
    next_ += mapped + page_;   // the page after the allocation stays inaccessible
    if (mprotect((void*)map_base, mapped, PROT_READ | PROT_WRITE) != 0)
        return Fail(kOutOfMemory, Format("cannot map %zu bytes of host memory", mapped));
    Allocation allocation{map_base, mapped, map_base + mapped - rounded, bytes, false};
    Poison((void*)allocation.base, rounded);
    live_[map_base] = allocation;
    used_ += rounded;
    *pointer = allocation.base;
    return {};
}

void Memory::Release(const Allocation& allocation)
{
    madvise((void*)allocation.map_base, allocation.map_bytes, MADV_DONTNEED);
    mprotect((void*)allocation.map_base, allocation.map_bytes, PROT_NONE);
    if (!allocation.pinned)
        used_ -= RoundUp(allocation.size, kAlignment);
    freed_[allocation.map_base] = allocation;
    if (freed_.size() > kFreedRemembered)
        freed_.erase(freed_.begin());
}

Status Memory::Free(uintptr_t pointer)
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing(pointer, live_);
    if (allocation == nullptr || allocation->pinned || allocation->base != pointer) {
        const Allocation* old = Containing(pointer, freed_);
        if (old != nullptr && old->base == pointer)
            return Fail(kInvalidValue, Format("0x%llx was already freed (a %zu-byte allocation)", (unsigned long long)pointer, old->size));
        return Fail(kInvalidValue, Format("0x%llx is not the start of a live device allocation", (unsigned long long)pointer));
    }
    const Allocation copy = *allocation;
    live_.erase(copy.map_base);
    Release(copy);
    return {};
}

Status Memory::AllocateHost(size_t bytes, void** pointer)
{
    const size_t mapped = RoundUp(bytes == 0 ? 1 : bytes, page_);
    std::lock_guard<std::mutex> lock(gate_);
    if (range_begin_ == 0 || next_ + mapped + page_ > range_end_)
        return Fail(kOutOfMemory, "the emulated device's address range is exhausted");
    const uintptr_t map_base = next_;
    next_ += mapped + page_;
    if (mprotect((void*)map_base, mapped, PROT_READ | PROT_WRITE) != 0)
        return Fail(kOutOfMemory, Format("cannot map %zu bytes of pinned host memory", mapped));
    Poison((void*)map_base, mapped);
    live_[map_base] = Allocation{map_base, mapped, map_base, bytes, true};
    *pointer = (void*)map_base;
    return {};
}

Status Memory::FreeHost(void* pointer)
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing((uintptr_t)pointer, live_);
    if (allocation == nullptr || !allocation->pinned || allocation->base != (uintptr_t)pointer)
        return Fail(kInvalidValue, Format("%p is not pinned host memory from cuMemHostAlloc", pointer));
    const Allocation copy = *allocation;
    live_.erase(copy.map_base);
    Release(copy);
    return {};
}

const Memory::Allocation* Memory::Containing(uintptr_t address, const std::map<uintptr_t, Allocation>& in) const
{
    auto it = in.upper_bound(address);
    if (it == in.begin())
        return nullptr;
    --it;
    // The trailing guard page belongs to the allocation before it, for messages.
    return address < it->second.map_base + it->second.map_bytes + page_ ? &it->second : nullptr;
}

Status Memory::CheckDevice(uintptr_t pointer, size_t bytes, const char* what) const
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing(pointer, live_);
    if (allocation == nullptr || allocation->pinned || pointer < allocation->base) {
        const Allocation* old = Containing(pointer, freed_);
        if (old != nullptr && pointer >= old->base)
            return Fail(kInvalidValue, Format("%s: 0x%llx is in a freed %zu-byte allocation", what, (unsigned long long)pointer, old->size));
        return Fail(kInvalidValue, Format("%s: 0x%llx is not device memory", what, (unsigned long long)pointer));
    }
    const size_t offset = pointer - allocation->base;
    if (offset > allocation->size || bytes > allocation->size - offset)
        return Fail(kInvalidValue, Format("%s: %zu bytes at offset %zu of a %zu-byte allocation run %zu bytes past its end", what, bytes,
                                          offset, allocation->size, offset + bytes - allocation->size));
    return {};
}

bool Memory::IsPinned(const void* pointer, size_t bytes) const
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing((uintptr_t)pointer, live_);
    return allocation != nullptr && allocation->pinned && (uintptr_t)pointer >= allocation->base &&
           (uintptr_t)pointer + bytes <= allocation->base + allocation->size;
}

uintptr_t Memory::BaseOf(uintptr_t pointer) const
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing(pointer, live_);
    return allocation != nullptr && !allocation->pinned && pointer >= allocation->base && pointer <= allocation->base + allocation->size
               ? allocation->base
               : 0;
}

bool Memory::Accessible(uintptr_t pointer) const
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing(pointer, live_);
    return allocation != nullptr && pointer >= allocation->base && pointer <= allocation->base + allocation->size;
}

Status Memory::CheckSlack(uintptr_t pointer, const std::string& culprit) const
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing(pointer, live_);
    if (allocation == nullptr || allocation->pinned)
        return {};
    const uintptr_t end = allocation->base + allocation->size;
    const size_t slack = RoundUp(allocation->size, kAlignment) - allocation->size;
    size_t bad = 0;
    if (slack == 0 || IsPoisoned((const void*)end, slack, &bad))
        return {};
    return Fail(kIllegalAddress, Format("%s wrote past the end of a %zu-byte allocation at 0x%llx (byte %zu after its end changed)",
                                        culprit.c_str(), allocation->size, (unsigned long long)allocation->base, bad));
}

std::string Memory::Describe(uintptr_t address) const
{
    std::lock_guard<std::mutex> lock(gate_);
    const Allocation* allocation = Containing(address, live_);
    const char* state = "";
    if (allocation == nullptr) {
        allocation = Containing(address, freed_);
        state = "freed ";
    }
    if (allocation == nullptr)
        return Format("0x%llx is not device memory", (unsigned long long)address);
    const char* kind = allocation->pinned ? "pinned host" : "device";
    if (address < allocation->base)
        return Format("0x%llx is %llu bytes before a %s%zu-byte %s allocation at 0x%llx", (unsigned long long)address,
                      (unsigned long long)(allocation->base - address), state, allocation->size, kind, (unsigned long long)allocation->base);
    if (address < allocation->base + allocation->size)
        return Format("0x%llx is byte %llu of a %s%zu-byte %s allocation", (unsigned long long)address,
                      (unsigned long long)(address - allocation->base), state, allocation->size, kind);
    return Format("0x%llx is %llu bytes past the end of a %s%zu-byte %s allocation at 0x%llx", (unsigned long long)address,
                  (unsigned long long)(address - allocation->base - allocation->size), state, allocation->size, kind,
                  (unsigned long long)allocation->base);
}

size_t Memory::LiveAllocations() const
{
    std::lock_guard<std::mutex> lock(gate_);
    size_t count = 0;
    for (const auto& entry : live_)
        count += entry.second.pinned ? 0 : 1;
    return count;
}

size_t Memory::Used() const
{
    std::lock_guard<std::mutex> lock(gate_);
    return used_;
}

void Memory::FreeAll()
{
    std::lock_guard<std::mutex> lock(gate_);
    for (auto& [base, allocation] : live_)
        if (!allocation.pinned)
            Release(allocation);
    for (auto it = live_.begin(); it != live_.end();)
        it = it->second.pinned ? std::next(it) : live_.erase(it);
}

}  // namespace tome_emu
