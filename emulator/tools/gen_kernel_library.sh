#!/bin/sh
# gen_kernel_library.sh CXX INCLUDE_DIR KERNEL.cu OUT_DIR [HEADER_DIR]
#
# Writes the two generated units of one kernel library:
#   OUT_DIR/STEM.cpp         the kernel file itself (unmodified) plus the table of its extern "C" __global__
#                            functions, found by preprocessing the file with markers for __global__/__shared__;
#   OUT_DIR/STEM_shared.cpp  the dynamic shared memory: one thread-local buffer, under every name the file
#                            declares with `extern __shared__ T name[]`, so all such arrays share it as on a GPU.
set -eu
cxx=$1
include=$2
source=$3
out=$4
headers=${5:-$(dirname "$source")}
stem=$(basename "$source" .cu)
kernel_dir=$(cd "$(dirname "$source")" && pwd)
capacity=232448   # 227 KiB: the most dynamic shared memory an sm_90 block can opt into

flat=$("$cxx" -x c++ -std=c++17 -E -P -DTOME_EMU_SCAN -I"$include" -I"$kernel_dir" -I"$headers" -include tome_cuda_emu.h "$source" | tr '\n\t' '  ')
kernels=$(printf '%s' "$flat" | grep -oE '__tome_global__ +void +[A-Za-z_][A-Za-z0-9_]*' | awk '{ print $3 }')
dynamic=$(printf '%s' "$flat" | grep -oE 'extern +__tome_shared__ [^;]*\[ *\]' |
          sed -E 's/^.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*) *\[ *\]$/\1/' | sort -u)
if [ -z "$kernels" ]; then
    echo "gen_kernel_library.sh: no extern \"C\" __global__ functions in $source" >&2
    exit 1
fi

{
    echo "// Generated from $stem.cu by emulator/tools/gen_kernel_library.sh; do not edit."
    echo "#include \"$kernel_dir/$stem.cu\""
    echo "#include \"tome_emu_register.h\""
    printf 'TOME_EMU_LIBRARY("%s.cu"' "$stem"
    for kernel in $kernels; do printf ', TOME_EMU_ENTRY(%s)' "$kernel"; done
    echo ')'
} > "$out/$stem.cpp.tmp"
mv "$out/$stem.cpp.tmp" "$out/$stem.cpp"

{
    echo "// Generated from $stem.cu by emulator/tools/gen_kernel_library.sh; do not edit."
    echo "#include <cstddef>"
    if [ -n "$dynamic" ]; then
        echo "alignas(16) thread_local unsigned char tome_emu_dynamic_shared[$capacity];"
        for name in $dynamic; do
            echo "extern thread_local unsigned char $name[$capacity] __attribute__((alias(\"tome_emu_dynamic_shared\")));"
        done
        echo "extern \"C\" void* tome_emu_dynamic_shared_address() { return tome_emu_dynamic_shared; }"
        echo "extern \"C\" const std::size_t tome_emu_dynamic_shared_capacity = $capacity;"
    else
        echo "extern \"C\" void* tome_emu_dynamic_shared_address() { return nullptr; }"
        echo "extern \"C\" const std::size_t tome_emu_dynamic_shared_capacity = 0;"
    fi
} > "$out/${stem}_shared.cpp.tmp"
mv "$out/${stem}_shared.cpp.tmp" "$out/${stem}_shared.cpp"
