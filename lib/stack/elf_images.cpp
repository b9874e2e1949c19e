// SPDX-License-Identifier: MIT
// The ELF and DWARF files the symbolizer reads, opened so that no descriptor stays open.
#include "stack/elf_images.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fencedep::detail {
namespace {

// The image of the regular file at `path`, mapped (or, where mapping fails, read) whole, so that
// libelf never reads from the descriptor again; the descriptor is closed before this returns.
Elf* read_image(const char* path) noexcept {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nullptr;
    struct stat status {};
    Elf* image = nullptr;
    // A device or a pipe could block the read, or never end.
    if (fstat(fd, &status) == 0 && S_ISREG(status.st_mode))
        image = elf_begin(fd, ELF_C_READ_MMAP_PRIVATE, nullptr);
    if (image != nullptr && (elf_kind(image) != ELF_K_ELF || elf_cntl(image, ELF_C_FDREAD) != 0)) {
        elf_end(image);
        image = nullptr;
    }
    close(fd);
    return image;
}

bool has_contents(Elf* image, std::string_view section_name) noexcept {
    std::size_t names = 0;
    if (elf_getshdrstrndx(image, &names) != 0)
        return false;
    for (Elf_Scn* section = elf_nextscn(image, nullptr); section != nullptr;
         section = elf_nextscn(image, section)) {
        GElf_Shdr header;
        if (gelf_getshdr(section, &header) == nullptr || header.sh_type == SHT_NOBITS)
            continue;
        const char* const name = elf_strptr(image, names, header.sh_name);
        if (name != nullptr && name == section_name)
            return true;
    }
    return false;
}

// Where the image's first PT_LOAD segment goes, from which libdwfl works out its load bias.
bool first_load_address(Elf* image, GElf_Addr& address) noexcept {
    std::size_t count = 0;
    if (elf_getphdrnum(image, &count) != 0)
        return false;
    for (std::size_t i = 0; i < count; ++i) {
        GElf_Phdr header;
        if (gelf_getphdr(image, static_cast<int>(i), &header) != nullptr && header.p_type == PT_LOAD) {
            address = header.p_vaddr;
            return true;
        }
    }
    return false;
}

std::string build_id_path(const void* id, ssize_t length) {
    constexpr char digits[] = "0123456789abcdef";
    const auto* const bytes = static_cast<const unsigned char*>(id);
    std::string path = "/usr/lib/debug/.build-id/";
    for (ssize_t i = 0; i < length; ++i) {
        path += digits[bytes[i] >> 4];
        path += digits[bytes[i] & 0xf];
        if (i == 0)
            path += '/';
    }
    return path + ".debug";
}

bool same_build(Elf* a, Elf* b) noexcept {
    const void* a_id = nullptr;
    const void* b_id = nullptr;
    const ssize_t length = dwelf_elf_gnu_build_id(a, &a_id);
    GElf_Addr a_load = 0;
    GElf_Addr b_load = 0;
    return length > 0 && dwelf_elf_gnu_build_id(b, &b_id) == length &&
           std::memcmp(a_id, b_id, static_cast<std::size_t>(length)) == 0 &&
           first_load_address(a, a_load) && first_load_address(b, b_load) && a_load == b_load;
}

// The separate debug file of `image`, if one is installed, with DWARF in it.
Elf* separate_debug_image(Elf* image) {
    const void* id = nullptr;
    const ssize_t length = dwelf_elf_gnu_build_id(image, &id);
    if (length <= 0)
        return nullptr;
    Elf* const debug = read_image(build_id_path(id, length).c_str());
    if (debug != nullptr && same_build(image, debug) && has_contents(debug, ".debug_info"))
        return debug;
    elf_end(debug);
    return nullptr;
}

// The shared DWARF files of dwz by the path of their build ID, null for one that is not installed.
// Never freed: the modules of a package share one, and libdw does not free what it was given.
std::unordered_map<std::string, Dwarf*>& shared_files() {
    static auto* const files = new std::unordered_map<std::string, Dwarf*>;
    return *files;
}

}  // namespace

int find_elf_image(Dwfl_Module* module, void** userdata, const char* module_name, Dwarf_Addr base,
                   char** file_name, Elf** elf) {
    if (module_name[0] == '/') {
        if (Elf* image = read_image(module_name)) {
            if (!has_contents(image, ".debug_info")) {
                if (Elf* debug = separate_debug_image(image)) {
                    elf_end(image);
                    image = debug;
                }
            }
            *elf = image;
            return -1;
        }
    }
    const int fd = dwfl_linux_proc_find_elf(module, userdata, module_name, base, file_name, elf);
    if (fd >= 0) {
        // A file that read_image could not read as an ELF image: libdwfl would keep the
        // descriptor, and with a file name left it would open the file again itself.
        close(fd);
        elf_end(*elf);
        *elf = nullptr;
        std::free(*file_name);
        *file_name = nullptr;
    }
    return -1;
}

int no_separate_debuginfo(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*, const char*,
                          GElf_Word, char**) {
    return -1;
}

void attach_shared_dwarf(Dwfl_Module* module) {
    Dwarf_Addr bias = 0;
    Dwarf* const dwarf = dwfl_module_getdwarf(module, &bias);
    const char* name = nullptr;
    const void* id = nullptr;
    const ssize_t length = dwarf != nullptr ? dwelf_dwarf_gnu_debugaltlink(dwarf, &name, &id) : 0;
    if (length <= 0)
        return;
    const std::string path = build_id_path(id, length);
    const auto [file, added] = shared_files().try_emplace(path, nullptr);
    if (added) {
        // Where libdw would look: by build ID, then at the name the link gives.
        Elf* image = read_image(path.c_str());
        if (image == nullptr && name[0] == '/')
            image = read_image(name);
        file->second = image != nullptr ? dwarf_begin_elf(image, DWARF_C_READ, nullptr) : nullptr;
        if (file->second == nullptr)
            elf_end(image);
    }
    if (file->second != nullptr)
        dwarf_setalt(dwarf, file->second);
}

}  // namespace fencedep::detail
