// kernels.h: the host-compiled kernel libraries (one per kernels/*.cu) and their shared memory.
//
// A module loaded from a CUBIN resolves its entry points by name in the kernel directory: the library
// that defines them all. Its thread-local block is the shared memory of the block running on a host
// thread: the static __shared__ arrays, then the dynamic (extern __shared__) array.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "status.h"
#include "tome_emu_abi.h"

namespace tome_emu {

struct KernelLibraryHandle {
    std::string path;
    void* dl = nullptr;
    const KernelLibrary* table = nullptr;
    size_t tls_size = 0;   // the library's PT_TLS size: all its shared memory

    const KernelEntry* Entry(const std::string& name) const;
};

// This host thread's shared memory of `library`.
struct SharedMemory {
    unsigned char* tls = nullptr;
    size_t tls_size = 0;
    unsigned char* dynamic = nullptr;
    size_t dynamic_capacity = 0;
};
SharedMemory SharedFor(const KernelLibraryHandle& library);

// The directory kernels resolve in: TOME_EMU_KERNELS, else what this thread set with
// tomeEmuSetKernelDirectory (tests that plant bugs in a copy of the kernels), else kernels/ beside libcuda.so.1.
std::string KernelDirectory();
void SetThreadKernelDirectory(const char* directory);

// The library in `directory` that defines every name in `names`.
Status FindKernelLibrary(const std::string& directory, const std::vector<std::string>& names, const KernelLibraryHandle** library);

}  // namespace tome_emu
