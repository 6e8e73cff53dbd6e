// handles.h: the live objects behind opaque API handles (events, graphs, cuBLAS descriptors), so a destroyed
// or made-up handle is an error rather than a wild pointer.
#pragma once
#include <mutex>
#include <set>

#include "status.h"

namespace tome_emu {

template <typename T>
class HandleSet {
public:
    T* Add(T* item)
    {
        std::lock_guard<std::mutex> lock(gate_);
        live_.insert(item);
        return item;
    }

    bool Has(const void* item)
    {
        std::lock_guard<std::mutex> lock(gate_);
        return live_.count(static_cast<T*>(const_cast<void*>(item))) != 0;
    }

    // The object behind `handle`, or an error naming it as `what`.
    Status Find(void* handle, T** item, const char* what)
    {
        *item = Has(handle) ? static_cast<T*>(handle) : nullptr;
        return *item != nullptr ? Status{} : Fail(kInvalidHandle, Format("%s %p does not exist", what, handle));
    }

    bool Remove(void* item)
    {
        {
            std::lock_guard<std::mutex> lock(gate_);
            if (live_.erase(static_cast<T*>(item)) == 0)
                return false;
        }
        delete static_cast<T*>(item);
        return true;
    }

    Status Destroy(void* handle, const char* what)
    {
        return Remove(handle) ? Status{} : Fail(kInvalidHandle, Format("%s %p does not exist", what, handle));
    }

private:
    std::mutex gate_;
    std::set<T*> live_;
};

}  // namespace tome_emu
