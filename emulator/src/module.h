// module.h: loaded modules, their functions, and kernel launches on the emulated device.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "block.h"
#include "image.h"
#include "kernels.h"
#include "stream.h"

namespace tome_emu {

struct Module;

struct Function {
    std::shared_ptr<Module> module;
    const ImageFunction* info = nullptr;          // from the CUBIN: registers, shared memory, parameters
    const KernelLibraryHandle* library = nullptr;  // the host-compiled code
    const KernelEntry* entry = nullptr;
    int max_dynamic_shared = 0;                    // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    int carveout = -1;

    int MaxThreadsPerBlock() const;
};

struct Module {
    Image image;
    std::string kernel_directory;   // where its functions resolve, fixed when it was loaded
    std::mutex gate;
    std::map<std::string, std::unique_ptr<Function>> functions;
};

// Device limits of the emulated sm_90 part.
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kMaxBlockDimZ = 64;
constexpr int kMaxGridDimYZ = 65535;
constexpr int kDefaultSharedPerBlock = 48 * 1024;
constexpr int kMaxSharedPerBlockOptin = 227 * 1024;
constexpr int kRegistersPerSm = 65536;

Status LoadModule(const void* image, void** handle);
// Launches queued by this thread run their threads in `order` (0 forward, 1 reverse, 2 random with `seed`);
// any other value restores the environment's choice.
void SetThreadOrder(int order, uint64_t seed);
Status UnloadModule(void* handle);
Status GetFunction(void* module, const char* name, void** function);
Function* ResolveFunction(void* handle, Status* status);

// Validates a launch as the driver does, copies its parameters, and queues it on `stream`.
Status Launch(Function* function, Dim3 grid, Dim3 block, unsigned int shared_bytes, const std::shared_ptr<Stream>& stream,
              void** params, void** extra);

}  // namespace tome_emu
