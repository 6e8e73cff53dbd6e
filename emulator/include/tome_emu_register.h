// tome_emu_register.h: turns a kernel file's extern "C" __global__ functions into the KernelLibrary table
// the driver reads (see tools/gen_kernel_library.sh, which lists them). Each entry's launcher unpacks the
// cuLaunchKernel parameter array into the function's own parameter types, deduced from the function.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

#include "tome_emu_abi.h"

namespace tome_emu::registration {

template <typename T>
constexpr unsigned char PointerKind()
{
    if constexpr (std::is_pointer_v<T>)
        return std::is_const_v<std::remove_pointer_t<T>> ? 1 : 2;
    else
        return 0;
}

template <typename F>
struct Traits;

template <typename... A>
struct Traits<void (*)(A...)> {
    static constexpr int count = (int)sizeof...(A);
    static constexpr unsigned short sizes[sizeof...(A) + 1] = {(unsigned short)sizeof(A)..., 0};
    static constexpr unsigned char pointers[sizeof...(A) + 1] = {PointerKind<A>()..., 0};

    template <void (*F)(A...), std::size_t... I>
    static void Call(const void* const* params, std::index_sequence<I...>)
    {
        F(*static_cast<const std::decay_t<A>*>(params[I])...);
    }

    template <void (*F)(A...)>
    static void Launch(const void* const* params)
    {
        Call<F>(params, std::index_sequence_for<A...>{});
    }
};

}  // namespace tome_emu::registration

extern "C" void* tome_emu_dynamic_shared_address();
extern "C" const std::size_t tome_emu_dynamic_shared_capacity;

#define TOME_EMU_ENTRY(name)                                                                                                 \
    {#name, &tome_emu::registration::Traits<decltype(&name)>::Launch<&name>, tome_emu::registration::Traits<decltype(&name)>::count, \
     tome_emu::registration::Traits<decltype(&name)>::sizes, tome_emu::registration::Traits<decltype(&name)>::pointers}

// The library's table: its file name and TOME_EMU_ENTRY(...) for each kernel.
#define TOME_EMU_LIBRARY(file, ...)                                                                                          \
    namespace {                                                                                                              \
    thread_local char tome_emu_tls_anchor;                                                                                   \
    void* TomeEmuTlsAnchor() { return &tome_emu_tls_anchor; }                                                                \
    const tome_emu::KernelEntry tome_emu_entries[] = {__VA_ARGS__};                                                          \
    }                                                                                                                        \
    extern "C" __attribute__((visibility("default"))) const tome_emu::KernelLibrary* tome_emu_kernel_library()               \
    {                                                                                                                        \
        static const tome_emu::KernelLibrary library = {tome_emu::kAbiVersion, file,                                         \
                                                        (int)(sizeof tome_emu_entries / sizeof tome_emu_entries[0]),         \
                                                        tome_emu_entries, &TomeEmuTlsAnchor, &tome_emu_dynamic_shared_address, \
                                                        tome_emu_dynamic_shared_capacity};                                   \
        return &library;                                                                                                     \
    }
