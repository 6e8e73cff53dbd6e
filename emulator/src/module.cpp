// module.cpp: modules, functions and kernel launches (see module.h).
#include "module.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <set>

#include "faults.h"
#include "memory.h"
#include "pool.h"

namespace tome_emu {

namespace {

std::mutex registry_gate;
std::map<void*, std::shared_ptr<Module>>* modules = new std::map<void*, std::shared_ptr<Module>>();
std::set<Function*>* functions = new std::set<Function*>();

thread_local int order_override = 0;   // 0: the environment's; else 1 + ThreadOrder
thread_local uint64_t seed_override = 0;

// TOME_EMU_ORDER = forward | reverse | random (default), TOME_EMU_SEED = the random order's seed, unless the
// launching thread chose (tomeEmuSetThreadOrder).
ThreadOrder ConfiguredOrder()
{
    if (order_override != 0)
        return (ThreadOrder)(order_override - 1);
    const char* text = std::getenv("TOME_EMU_ORDER");
    if (text != nullptr && std::strcmp(text, "forward") == 0)
        return ThreadOrder::Forward;
    if (text != nullptr && std::strcmp(text, "reverse") == 0)
        return ThreadOrder::Reverse;
    return ThreadOrder::Random;
}

uint64_t ConfiguredSeed()
{
    if (order_override != 0)
        return seed_override;
    const char* text = std::getenv("TOME_EMU_SEED");
    return text != nullptr ? std::strtoull(text, nullptr, 10) : 0x70e0e0u;
}

uint64_t Hash(const std::string& text, uint64_t h)
{
    for (unsigned char c : text)
        h = (h ^ c) * 0x100000001b3ull;
    return h;
}

struct LaunchData {
    Function* function;
    std::shared_ptr<Module> keep_alive;
    LaunchPlan plan;
    std::vector<unsigned char> bytes;        // the parameters, each at its natural alignment
    std::vector<const void*> pointers;       // into bytes, one per parameter
};

Status RunLaunch(LaunchData& launch)
{
    const Function& f = *launch.function;
    const std::string& name = launch.plan.name;
    // A pointer parameter must point into device (or pinned host) memory, as a real kernel would fault.
    std::vector<uintptr_t> buffers;
    for (int i = 0; i < f.entry->param_count; ++i) {
        if (!f.entry->param_is_pointer[i])
            continue;
        uintptr_t value = 0;
        std::memcpy(&value, launch.pointers[(size_t)i], sizeof value);
        if (value == 0)
            continue;
        if (!Memory::Get().Accessible(value))
            return Fail(kIllegalAddress, Format("%s: pointer parameter %d is not device memory: %s", name.c_str(), i,
                                                Memory::Get().Describe(value).c_str()));
        buffers.push_back(value);
    }
    const Dim3 grid = launch.plan.grid;
    const size_t blocks = (size_t)grid.x * grid.y * grid.z;
    std::atomic<bool> failed{false};
    std::mutex gate;
    Status first;
    WorkerPool::Get().Run(blocks, [&](size_t index, BlockRunner& runner) {
        if (failed.load(std::memory_order_relaxed))
            return;
        const Dim3 block{(unsigned)(index % grid.x), (unsigned)(index / grid.x % grid.y), (unsigned)(index / ((size_t)grid.x * grid.y))};
        Status status = runner.Run(launch.plan, block);
        if (!status.ok()) {
            std::lock_guard<std::mutex> lock(gate);
            if (first.ok())
                first = status;
            failed = true;
        }
    });
    if (!first.ok())
        return first;
    for (uintptr_t buffer : buffers)
        if (Status status = Memory::Get().CheckSlack(buffer, name); !status.ok())
            return status;
    return {};
}

}  // namespace

void SetThreadOrder(int order, uint64_t seed)
{
    order_override = order >= 0 && order <= 2 ? order + 1 : 0;
    seed_override = seed;
}

int Function::MaxThreadsPerBlock() const
{
    const int per_warp = (info->registers * 32 + 255) / 256 * 256;   // registers are allocated per warp, 256 at a time
    int threads = per_warp > 0 ? kRegistersPerSm / per_warp * 32 : kMaxThreadsPerBlock;
    threads = std::min(threads, kMaxThreadsPerBlock);
    if (info->max_threads > 0)
        threads = std::min(threads, info->max_threads);
    return threads;
}

Status LoadModule(const void* data, void** handle)
{
    auto module = std::make_shared<Module>();
    Status status = ParseImage(data, &module->image);
    if (!status.ok())
        return status;
    const Image& image = module->image;
    if (image.ptx) {
        if (image.sm > 90)
            return Fail(kNoBinaryForGpu, Format("PTX for sm_%d cannot be compiled for the sm_90 device", image.sm));
        if (image.ptx_version > 80)
            return Fail(kUnsupportedPtxVersion, Format("PTX ISA %d.%d is newer than this driver (CUDA 12.0) supports",
                                                       image.ptx_version / 10, image.ptx_version % 10));
    } else if (image.sm / 10 != 9 || image.sm % 10 != 0) {
        return Fail(kNoBinaryForGpu, Format("a CUBIN for sm_%d does not run on the sm_90 device", image.sm));
    }
    module->kernel_directory = KernelDirectory();
    std::lock_guard<std::mutex> lock(registry_gate);
    (*modules)[module.get()] = module;
    *handle = module.get();
    return {};
}

Status UnloadModule(void* handle)
{
    std::lock_guard<std::mutex> lock(registry_gate);
    auto it = modules->find(handle);
    if (it == modules->end())
        return Fail(kInvalidHandle, Format("module %p is not loaded", handle));
    for (auto& [name, function] : it->second->functions)
        functions->erase(function.get());
    modules->erase(it);   // queued launches keep the module alive until they ran
    return {};
}

Status GetFunction(void* handle, const char* name, void** result)
{
    std::shared_ptr<Module> module;
    {
        std::lock_guard<std::mutex> lock(registry_gate);
        auto it = modules->find(handle);
        if (it == modules->end())
            return Fail(kInvalidHandle, Format("module %p is not loaded", handle));
        module = it->second;
    }
    std::lock_guard<std::mutex> lock(module->gate);
    if (auto it = module->functions.find(name); it != module->functions.end()) {
        *result = it->second.get();
        return {};
    }
    const ImageFunction* info = module->image.Find(name);
    if (info == nullptr) {
        std::string entries;
        for (const auto& f : module->image.functions)
            entries += (entries.empty() ? "" : ", ") + f.name;
        return Fail(kNotFound, Format("the module has no kernel named %s (it has: %s)", name, entries.c_str()));
    }
    std::vector<std::string> names;
    for (const auto& f : module->image.functions)
        names.push_back(f.name);
    auto function = std::make_unique<Function>();
    Status status = FindKernelLibrary(module->kernel_directory, names, &function->library);
    if (!status.ok())
        return status;
    function->module = module;
    function->info = info;
    function->entry = function->library->Entry(name);
    const KernelEntry& entry = *function->entry;
    if (info->params_known) {
        bool same = (size_t)entry.param_count == info->params.size();
        for (int i = 0; same && i < entry.param_count; ++i)
            same = entry.param_sizes[i] == info->params[(size_t)i].size;
        if (!same) {
            std::string device, host;
            for (const auto& p : info->params)
                device += Format("%s%u", device.empty() ? "" : ",", p.size);
            for (int i = 0; i < entry.param_count; ++i)
                host += Format("%s%u", host.empty() ? "" : ",", (unsigned)entry.param_sizes[i]);
            return Fail(kInvalidImage, Format("%s takes parameters of (%s) bytes in the CUBIN but (%s) in the emulator's build of %s "
                                              "(rebuild: make -C emulator)",
                                              name, device.c_str(), host.c_str(), function->library->table->source_file));
        }
    }
    function->max_dynamic_shared = kDefaultSharedPerBlock - (int)info->static_shared;
    *result = function.get();
    {
        std::lock_guard<std::mutex> registry(registry_gate);
        functions->insert(function.get());
    }
    module->functions[name] = std::move(function);
    return {};
}

Function* ResolveFunction(void* handle, Status* status)
{
    std::lock_guard<std::mutex> lock(registry_gate);
    if (functions->count(static_cast<Function*>(handle)) == 0) {
        *status = Fail(kInvalidHandle, Format("function %p is not a loaded kernel", handle));
        return nullptr;
    }
    return static_cast<Function*>(handle);
}

Status Launch(Function* f, Dim3 grid, Dim3 block, unsigned int shared_bytes, const std::shared_ptr<Stream>& stream, void** params,
              void** extra)
{
    const char* name = f->entry->name;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > (unsigned)kMaxGridDimYZ || grid.z > (unsigned)kMaxGridDimYZ)
        return Fail(kInvalidValue, Format("%s: grid (%u,%u,%u) is outside the device's limits (x ≤ 2^31−1, y and z ≤ 65535, none 0)",
                                          name, grid.x, grid.y, grid.z));
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > (unsigned)kMaxThreadsPerBlock || block.y > (unsigned)kMaxThreadsPerBlock ||
        block.z > (unsigned)kMaxBlockDimZ || threads > (unsigned long long)kMaxThreadsPerBlock)
        return Fail(kInvalidValue, Format("%s: block (%u,%u,%u) is outside the device's limits (at most 1024 threads, z ≤ 64)", name,
                                          block.x, block.y, block.z));
    if (threads > (unsigned long long)f->MaxThreadsPerBlock())
        return Fail(kLaunchOutOfResources, Format("%s: %llu threads per block, but the kernel allows %d (%d registers per thread%s)", name,
                                                  threads, f->MaxThreadsPerBlock(), f->info->registers,
                                                  f->info->max_threads > 0 ? Format(", __launch_bounds__(%d)", f->info->max_threads).c_str() : ""));
    if ((int)shared_bytes > f->max_dynamic_shared)
        return Fail(kInvalidValue, Format("%s: %u bytes of dynamic shared memory, but the kernel allows %d (with %zu static; "
                                          "raise CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES for more than 48 KiB in all)",
                                          name, shared_bytes, f->max_dynamic_shared, f->info->static_shared));

    auto launch = std::make_shared<LaunchData>();
    launch->function = f;
    launch->keep_alive = f->module;
    const KernelEntry& entry = *f->entry;
    // Each parameter at its natural alignment (as in the CUDA parameter buffer), so the launcher reads it in place.
    std::vector<size_t> offsets;
    size_t total = 0;
    for (int i = 0; i < entry.param_count; ++i) {
        size_t align = 1;
        while (align < entry.param_sizes[i] && align < 16)
            align *= 2;
        total = (total + align - 1) / align * align;
        offsets.push_back(total);
        total += entry.param_sizes[i];
    }
    launch->bytes.resize(total);   // operator new's storage is 16-byte aligned
    if (params != nullptr) {
        for (int i = 0; i < entry.param_count; ++i)
            std::memcpy(launch->bytes.data() + offsets[(size_t)i], params[i], entry.param_sizes[i]);
    } else if (extra != nullptr) {
        // CU_LAUNCH_PARAM_BUFFER_POINTER (1), CU_LAUNCH_PARAM_BUFFER_SIZE (2), CU_LAUNCH_PARAM_END (0).
        const unsigned char* buffer = nullptr;
        size_t size = 0;
        for (size_t i = 0; extra[i] != nullptr; i += 2) {
            if (extra[i] == (void*)1)
                buffer = static_cast<const unsigned char*>(extra[i + 1]);
            else if (extra[i] == (void*)2)
                size = *static_cast<const size_t*>(extra[i + 1]);
        }
        if (buffer == nullptr || !f->info->params_known || size < f->info->param_bytes)
            return Fail(kInvalidValue, Format("%s: the extra parameter buffer is missing or smaller than the kernel's %zu bytes", name,
                                              f->info->param_bytes));
        for (int i = 0; i < entry.param_count; ++i)
            std::memcpy(launch->bytes.data() + offsets[(size_t)i], buffer + f->info->params[(size_t)i].offset, entry.param_sizes[i]);
    } else if (entry.param_count > 0) {
        return Fail(kInvalidValue, Format("%s takes %d parameters; none were given", name, entry.param_count));
    }
    for (size_t offset : offsets)
        launch->pointers.push_back(launch->bytes.data() + offset);

    LaunchPlan& plan = launch->plan;
    plan.entry = f->entry;
    plan.library = f->library;
    plan.name = name;
    plan.grid = grid;
    plan.block = block;
    plan.dynamic_shared = shared_bytes;
    plan.params = launch->pointers.data();
    plan.order = ConfiguredOrder();
    plan.seed = Hash(plan.name, ConfiguredSeed() ^ ((uint64_t)grid.x << 32 | block.x));

    Op op;
    op.what = Format("kernel %s<<<(%u,%u,%u), (%u,%u,%u), %u>>>", name, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes);
    // A pointer parameter is memory the kernel reads, and writes unless it points to const.
    for (int i = 0; i < entry.param_count; ++i) {
        if (entry.param_is_pointer[i] == 0)
            continue;
        uintptr_t value = 0;
        std::memcpy(&value, launch->pointers[(size_t)i], sizeof value);
        op.accesses.push_back(Access{value, entry.param_is_pointer[i] == 2});
    }
    op.run = [launch] { return RunLaunch(*launch); };
    if (TakeInjectedLaunchFault(name)) {
        const std::string culprit = op.what;
        op.run = [culprit] {
            return Fail(kIllegalAddress, culprit + " read past the end of a device allocation (a fault injected by tomeEmuInjectLaunchFault)");
        };
    }
    return StreamSet::Get().Enqueue(stream, std::move(op));
}

}  // namespace tome_emu
