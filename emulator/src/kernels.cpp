// kernels.cpp: loading the kernel libraries and finding each host thread's shared memory in them.
#include "kernels.h"

#include <dirent.h>
#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace tome_emu {

namespace {

std::mutex gate;
// Directory -> its libraries, loaded once and never unloaded (launched kernels may still run).
std::map<std::string, std::vector<std::unique_ptr<KernelLibraryHandle>>>* directories =
    new std::map<std::string, std::vector<std::unique_ptr<KernelLibraryHandle>>>();
thread_local std::string thread_directory;

std::string OwnDirectory()
{
    Dl_info info{};
    if (dladdr((void*)&OwnDirectory, &info) == 0 || info.dli_fname == nullptr)
        return ".";
    std::string path = info.dli_fname;
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

size_t TlsSize(const std::string& path)
{
    struct Search {
        const char* path;
        size_t size;
    } search{path.c_str(), 0};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            auto* s = static_cast<Search*>(data);
            if (info->dlpi_name == nullptr || std::strcmp(info->dlpi_name, s->path) != 0)
                return 0;
            for (int i = 0; i < info->dlpi_phnum; ++i)
                if (info->dlpi_phdr[i].p_type == PT_TLS)
                    s->size = info->dlpi_phdr[i].p_memsz;
            return 1;
        },
        &search);
    return search.size;
}

Status LoadDirectory(const std::string& directory, std::vector<std::unique_ptr<KernelLibraryHandle>>& libraries)
{
    DIR* dir = opendir(directory.c_str());
    if (dir == nullptr)
        return Fail(kNotFound, "no kernel directory " + directory + " (build the emulator's kernels: make -C emulator)");
    std::vector<std::string> names;
    while (dirent* entry = readdir(dir)) {
        const std::string name = entry->d_name;
        if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0)
            names.push_back(name);
    }
    closedir(dir);
    for (const auto& name : names) {
        auto library = std::make_unique<KernelLibraryHandle>();
        library->path = directory + "/" + name;
        library->dl = dlopen(library->path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (library->dl == nullptr)
            return Fail(kInvalidImage, Format("cannot load kernel library %s: %s", library->path.c_str(), dlerror()));
        using Table = const KernelLibrary* (*)();
        auto table = reinterpret_cast<Table>(dlsym(library->dl, "tome_emu_kernel_library"));
        if (table == nullptr || table()->abi_version != kAbiVersion)
            return Fail(kInvalidImage, library->path + " is not a kernel library of this emulator (rebuild: make -C emulator)");
        library->table = table();
        library->tls_size = TlsSize(library->path);
        libraries.push_back(std::move(library));
    }
    return {};
}

}  // namespace

const KernelEntry* KernelLibraryHandle::Entry(const std::string& name) const
{
    for (int i = 0; i < table->entry_count; ++i)
        if (name == table->entries[i].name)
            return &table->entries[i];
    return nullptr;
}

SharedMemory SharedFor(const KernelLibraryHandle& library)
{
    thread_local std::unordered_map<const KernelLibraryHandle*, SharedMemory> cache;
    auto it = cache.find(&library);
    if (it != cache.end())
        return it->second;
    SharedMemory shared;
    library.table->tls_anchor();   // glibc allocates a library's thread-local block on first use
    void* block = nullptr;
    if (dlinfo(library.dl, RTLD_DI_TLS_DATA, &block) == 0 && block != nullptr) {
        shared.tls = static_cast<unsigned char*>(block);
        shared.tls_size = library.tls_size;
    }
    shared.dynamic = static_cast<unsigned char*>(library.table->dynamic_shared());
    shared.dynamic_capacity = library.table->dynamic_shared_capacity;
    cache[&library] = shared;
    return shared;
}

std::string KernelDirectory()
{
    if (const char* env = std::getenv("TOME_EMU_KERNELS"); env != nullptr && *env != '\0')
        return env;
    if (!thread_directory.empty())
        return thread_directory;
    static const std::string beside = OwnDirectory() + "/kernels";
    return beside;
}

void SetThreadKernelDirectory(const char* directory) { thread_directory = directory == nullptr ? "" : directory; }

Status FindKernelLibrary(const std::string& directory, const std::vector<std::string>& names, const KernelLibraryHandle** library)
{
    std::lock_guard<std::mutex> lock(gate);
    auto it = directories->find(directory);
    if (it == directories->end()) {
        std::vector<std::unique_ptr<KernelLibraryHandle>> loaded;
        Status status = LoadDirectory(directory, loaded);
        if (!status.ok())
            return status;
        it = directories->emplace(directory, std::move(loaded)).first;
    }
    for (const auto& candidate : it->second) {
        bool all = true;
        for (const auto& name : names)
            all = all && candidate->Entry(name) != nullptr;
        if (all) {
            *library = candidate.get();
            return {};
        }
    }
    std::string list;
    for (const auto& name : names)
        list += (list.empty() ? "" : ", ") + name;
    return Fail(kNotFound, "no kernel library in " + directory + " defines all of " + list +
                               " (the emulator's kernel build is older than the kernels: make -C emulator)");
}

}  // namespace tome_emu
