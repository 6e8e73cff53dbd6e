// image.cpp: reading CUBIN (ELF, e_machine EM_CUDA) and PTX images.
//
// CUBIN layout used here (as NVRTC 11.8 and later write it, ELF ABI version 7):
//   e_flags & 0xff            the SM the code is for (90 for sm_90)
//   symbols, st_other & 0x10  kernel entry points (STO_CUDA_ENTRY)
//   .nv.info                  per symbol: EIATTR_REGCOUNT (0x2f), EIATTR_FRAME_SIZE (0x11)
//   .nv.info.<kernel>         EIATTR_KPARAM_INFO (0x17: ordinal, offset, size in bits 18..31 of the last word),
//                             EIATTR_MAX_THREADS (0x05: __launch_bounds__), EIATTR_CBANK_PARAM_SIZE (0x19)
//   .nv.shared.<kernel>       static shared memory; for sm_90 it includes the 1 KiB the system reserves per block
#include "image.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>

namespace tome_emu {

namespace {

constexpr uint16_t kEmCuda = 190;
constexpr unsigned char kStoCudaEntry = 0x10;
constexpr size_t kSm90ReservedShared = 1024;

template <typename T>
T Read(const unsigned char* p)
{
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
}

struct Section {
    std::string name;
    uint32_t type = 0;
    uint64_t offset = 0, size = 0;
    uint32_t link = 0;
};

Status ParseCubin(const unsigned char* data, Image* image)
{
    if (data[4] != 2)
        return Fail(kInvalidImage, "a 32-bit CUDA ELF image; the device runs 64-bit code");
    const uint32_t flags = Read<uint32_t>(data + 0x30);
    image->sm = data[8] >= 8 ? (int)((flags >> 8) & 0xff) : (int)(flags & 0xff);
    const uint64_t shoff = Read<uint64_t>(data + 0x28);
    const uint16_t shentsize = Read<uint16_t>(data + 0x3a), shnum = Read<uint16_t>(data + 0x3c), shstrndx = Read<uint16_t>(data + 0x3e);
    auto name_at = [&](uint64_t table, uint32_t offset) { return std::string((const char*)data + table + offset); };
    const uint64_t names = Read<uint64_t>(data + shoff + (uint64_t)shstrndx * shentsize + 24);
    std::vector<Section> sections(shnum);
    std::map<std::string, const Section*> by_name;
    for (uint16_t i = 0; i < shnum; ++i) {
        const unsigned char* h = data + shoff + (uint64_t)i * shentsize;
        sections[i].name = name_at(names, Read<uint32_t>(h));
        sections[i].type = Read<uint32_t>(h + 4);
        sections[i].offset = Read<uint64_t>(h + 24);
        sections[i].size = Read<uint64_t>(h + 32);
        sections[i].link = Read<uint32_t>(h + 40);
        by_name[sections[i].name] = &sections[i];
    }

    std::vector<std::string> symbol_names;
    for (const auto& section : sections) {
        if (section.type != 2)   // SHT_SYMTAB
            continue;
        const uint64_t strtab = sections[section.link].offset;
        for (uint64_t at = section.offset; at + 24 <= section.offset + section.size; at += 24) {
            const std::string name = name_at(strtab, Read<uint32_t>(data + at));
            symbol_names.push_back(name);
            const unsigned char info = data[at + 4], other = data[at + 5];
            if ((info & 0xf) == 2 && (other & kStoCudaEntry) != 0) {   // STT_FUNC entry
                ImageFunction function;
                function.name = name;
                image->functions.push_back(function);
            }
        }
    }
    auto function_by_symbol = [&](uint32_t symbol) -> ImageFunction* {
        if (symbol >= symbol_names.size())
            return nullptr;
        for (auto& f : image->functions)
            if (f.name == symbol_names[symbol])
                return &f;
        return nullptr;
    };
    // Walks an .nv.info section: 4-byte entries (format, attribute, 16-bit value) or, for format 4,
    // (format, attribute, 16-bit size, payload).
    auto walk = [&](const Section* section, auto&& visit) {
        uint64_t at = section->offset;
        const uint64_t end = section->offset + section->size;
        while (at + 4 <= end) {
            const unsigned char format = data[at], attribute = data[at + 1];
            const uint16_t value = Read<uint16_t>(data + at + 2);
            if (format == 4) {
                visit(attribute, data + at + 4, (size_t)value);
                at += 4 + value;
            } else {
                visit(attribute, data + at + 2, (size_t)2);
                at += 4;
            }
        }
    };
    if (auto it = by_name.find(".nv.info"); it != by_name.end()) {
        walk(it->second, [&](unsigned char attribute, const unsigned char* payload, size_t size) {
            if (size < 8)
                return;
            ImageFunction* f = function_by_symbol(Read<uint32_t>(payload));
            if (f == nullptr)
                return;
            if (attribute == 0x2f)
                f->registers = (int)Read<uint32_t>(payload + 4);
            else if (attribute == 0x11)
                f->local_bytes = Read<uint32_t>(payload + 4);
        });
    }
    for (auto& f : image->functions) {
        if (auto it = by_name.find(".nv.shared." + f.name); it != by_name.end()) {
            f.static_shared = it->second->size;
            if (image->sm >= 90 && f.static_shared >= kSm90ReservedShared)
                f.static_shared -= kSm90ReservedShared;
        }
        auto it = by_name.find(".nv.info." + f.name);
        if (it == by_name.end())
            continue;
        f.params_known = true;
        walk(it->second, [&](unsigned char attribute, const unsigned char* payload, size_t size) {
            if (attribute == 0x17 && size >= 12) {
                const uint16_t ordinal = Read<uint16_t>(payload + 4), offset = Read<uint16_t>(payload + 6);
                const uint32_t bits = Read<uint32_t>(payload + 8);
                if (f.params.size() <= ordinal)
                    f.params.resize((size_t)ordinal + 1);
                f.params[ordinal] = ImageParam{offset, (bits >> 18) & 0x3fffu};
            } else if (attribute == 0x05 && size >= 12) {
                f.max_threads = (int)(Read<uint32_t>(payload) * Read<uint32_t>(payload + 4) * Read<uint32_t>(payload + 8));
            } else if (attribute == 0x19 && size == 2) {
                f.param_bytes = Read<uint16_t>(payload);
            }
        });
    }
    return {};
}

size_t PtxTypeSize(const std::string& type)
{
    if (type.size() < 3)
        return 0;
    const int bits = std::atoi(type.c_str() + 2);
    return bits > 0 ? (size_t)bits / 8 : 0;
}

Status ParsePtx(const char* text, Image* image)
{
    image->ptx = true;
    const std::string ptx = text;
    if (size_t at = ptx.find(".version "); at != std::string::npos)
        image->ptx_version = (int)(std::atof(ptx.c_str() + at + 9) * 10 + 0.5);
    if (size_t at = ptx.find(".target sm_"); at != std::string::npos)
        image->sm = std::atoi(ptx.c_str() + at + 11);
    for (size_t at = ptx.find(".entry "); at != std::string::npos; at = ptx.find(".entry ", at + 7)) {
        size_t begin = at + 7;
        while (begin < ptx.size() && ptx[begin] == ' ')
            ++begin;
        size_t end = begin;
        while (end < ptx.size() && (std::isalnum((unsigned char)ptx[end]) || ptx[end] == '_' || ptx[end] == '$'))
            ++end;
        ImageFunction function;
        function.name = ptx.substr(begin, end - begin);
        const size_t open = ptx.find('(', end), close = ptx.find(')', end);
        if (open != std::string::npos && close != std::string::npos && open < close) {
            function.params_known = true;
            size_t offset = 0;
            for (size_t p = ptx.find(".param", open); p != std::string::npos && p < close; p = ptx.find(".param", p + 6)) {
                size_t type_at = ptx.find('.', p + 6);
                size_t align = 0;
                if (ptx.compare(type_at, 7, ".align ") == 0) {
                    align = (size_t)std::atoi(ptx.c_str() + type_at + 7);
                    type_at = ptx.find('.', type_at + 7);
                }
                const size_t type_end = ptx.find_first_of(" \t", type_at);
                size_t size = PtxTypeSize(ptx.substr(type_at, type_end - type_at));
                if (size_t bracket = ptx.find('[', type_end); bracket != std::string::npos && bracket < ptx.find_first_of(",)", type_end))
                    size *= (size_t)std::atoi(ptx.c_str() + bracket + 1);
                if (align == 0)
                    align = size;
                offset = align > 0 ? (offset + align - 1) / align * align : offset;
                function.params.push_back(ImageParam{(unsigned)offset, (unsigned)size});
                offset += size;
            }
            function.param_bytes = offset;
        }
        image->functions.push_back(function);
    }
    return {};
}

}  // namespace

const ImageFunction* Image::Find(const std::string& name) const
{
    for (const auto& f : functions)
        if (f.name == name)
            return &f;
    return nullptr;
}

Status ParseImage(const void* data, Image* image)
{
    const auto* bytes = static_cast<const unsigned char*>(data);
    if (bytes == nullptr)
        return Fail(kInvalidValue, "no image");
    if (std::memcmp(bytes, "\x7f" "ELF", 4) == 0) {
        if (Read<uint16_t>(bytes + 18) != kEmCuda)
            return Fail(kInvalidImage, "an ELF image that is not CUDA device code (e_machine is not EM_CUDA)");
        return ParseCubin(bytes, image);
    }
    if (Read<uint32_t>(bytes) == 0xba55ed50u)
        return Fail(kInvalidImage, "a fatbinary: the emulated device loads a CUBIN or PTX (NVRTC's output) only");
    if (bytes[0] == '/' || bytes[0] == '.' || bytes[0] == '\n' || bytes[0] == ' ' || bytes[0] == '\t')
        return ParsePtx(static_cast<const char*>(data), image);
    return Fail(kInvalidImage, "neither a CUBIN nor PTX");
}

}  // namespace tome_emu
