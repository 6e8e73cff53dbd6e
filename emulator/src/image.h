// image.h: what cuModuleLoadData is given: a CUBIN (an NVIDIA ELF) or PTX text, read for what the
// driver needs: the target architecture, the entry points, and per entry its registers, static shared
// memory, launch bounds and parameter layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace tome_emu {

struct ImageParam {
    unsigned int offset = 0, size = 0;
};

struct ImageFunction {
    std::string name;
    int registers = 32;
    size_t static_shared = 0;
    size_t local_bytes = 0;
    int max_threads = 0;         // from __launch_bounds__, 0 when none
    bool params_known = false;   // PTX without a parsable parameter list leaves this false
    std::vector<ImageParam> params;
    size_t param_bytes = 0;
};

struct Image {
    bool ptx = false;
    int sm = 0;              // the architecture it was compiled for, e.g. 90
    int ptx_version = 0;     // major·10 + minor, PTX only
    std::vector<ImageFunction> functions;

    const ImageFunction* Find(const std::string& name) const;
};

Status ParseImage(const void* data, Image* image);

}  // namespace tome_emu
