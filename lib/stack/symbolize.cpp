// SPDX-License-Identifier: MIT
// Symbolization of return addresses with elfutils' libdwfl, and trimming of fencedep's own frames.
#include <cxxabi.h>
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "stack/stack.h"

namespace fencedep::detail {
namespace {

char* debuginfo_path = nullptr;  // libdwfl's default search path for separate debug files

// Separate debug files are looked up by build ID under /usr/lib/debug, where distributions install
// them. Not with dwfl_standard_find_debuginfo: its last resort is debuginfod, which loads libcurl
// into the program under test and, with DEBUGINFOD_URLS set, makes a report wait on downloads.
int find_local_debuginfo(Dwfl_Module* module, void** userdata, const char* module_name,
                         Dwarf_Addr base, const char* file_name, const char* debuglink_file,
                         GElf_Word debuglink_crc, char** debuginfo_file_name) {
    return dwfl_build_id_find_debuginfo(module, userdata, module_name, base, file_name,
                                        debuglink_file, debuglink_crc, debuginfo_file_name);
}

const Dwfl_Callbacks process_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = find_local_debuginfo,
    .section_address = nullptr,
    .debuginfo_path = &debuginfo_path,
};

// Re-reads /proc/self/maps. Modules still mapped keep their loaded symbol tables and DWARF.
void report_modules(Dwfl* dwfl) noexcept {
    dwfl_report_begin(dwfl);
    dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, nullptr, nullptr);
}

// libdwfl bounds a module by its file-backed mappings, which leaves out the zero pages of .bss
// past the end of the file (where lock_class_keys tend to be); the dynamic linker knows the whole
// object and so finds the module through its load address.
Dwfl_Module* find_module(Dwfl* dwfl, Dwarf_Addr address) noexcept {
    if (Dwfl_Module* module = dwfl_addrmodule(dwfl, address))
        return module;
    Dl_info object;
    if (dladdr(reinterpret_cast<const void*>(address), &object) == 0 || object.dli_fbase == nullptr)
        return nullptr;
    return dwfl_addrmodule(dwfl, reinterpret_cast<Dwarf_Addr>(object.dli_fbase));
}

struct address_range {
    Dwarf_Addr low = 0;
    Dwarf_Addr high = 0;
    bool contains(Dwarf_Addr address) const noexcept { return low <= address && address < high; }
};

// Opening a module's ELF and DWARF costs far more than one lookup, so one libdwfl session serves
// the whole process, under a lock because libdwfl is not thread-safe. It is never ended: reports
// may be symbolized from exit handlers and static destructors, and the pointer in this static
// keeps the session's memory reachable for LeakSanitizer.
struct session {
    std::mutex mutex;
    Dwfl* dwfl = nullptr;
    address_range own_module;  // where fencedep's code is mapped (a library or the executable)

    // Requires: `mutex` held.
    Dwfl* get() noexcept {
        if (dwfl == nullptr) {
            dwfl = dwfl_begin(&process_callbacks);
            if (dwfl == nullptr)
                return nullptr;
            report_modules(dwfl);
            const auto here = reinterpret_cast<Dwarf_Addr>(&symbolize_stack);
            if (Dwfl_Module* module = dwfl_addrmodule(dwfl, here))
                dwfl_module_info(module, nullptr, &own_module.low, &own_module.high, nullptr,
                                 nullptr, nullptr, nullptr);
        }
        return dwfl;
    }
};

// A T built at compile time and never destroyed (see session).
template <class T>
union never_destroyed {
    constexpr never_destroyed() : value() {}
    ~never_destroyed() {}
    T value;
};

constinit never_destroyed<session> the_session;

struct free_deleter {
    void operator()(char* pointer) const noexcept { std::free(pointer); }
};

std::string demangle(const char* symbol) {
    // Separate debug files name versioned symbols "name@@VERSION", which would not demangle.
    const std::string name(symbol, std::strcspn(symbol, "@"));
    int status = 0;
    const std::unique_ptr<char, free_deleter> demangled(
        abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status));
    return status == 0 && demangled ? std::string(demangled.get()) : name;
}

struct source_line {
    const char* file = nullptr;
    const char* directory = nullptr;  // the compilation directory, which a relative `file` is in
    int line = 0;
    Dwarf_Addr start = 0;  // where the line table row for the address starts
};

// libdwfl 0.188 finds an address's compilation unit through .debug_aranges only, which clang
// does not emit by default; without it, ask each unit whether it covers the address.
Dwarf_Die* find_unit(Dwfl_Module* module, Dwarf_Addr address, Dwarf_Addr& bias) noexcept {
    if (Dwarf_Die* unit = dwfl_module_addrdie(module, address, &bias))
        return unit;
    for (Dwarf_Die* unit = dwfl_module_nextcu(module, nullptr, &bias); unit != nullptr;
         unit = dwfl_module_nextcu(module, unit, &bias)) {
        if (dwarf_haspc(unit, address - bias) == 1)
            return unit;
    }
    return nullptr;
}

// The outermost inlined call under `scope` (a function, or a block in one) that contains pc.
bool find_inlined_call(Dwarf_Die* scope, Dwarf_Addr pc, Dwarf_Die& call) noexcept {
    Dwarf_Die child;
    if (dwarf_child(scope, &child) != 0)
        return false;
    do {
        const int tag = dwarf_tag(&child);
        if ((tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block) &&
            dwarf_haspc(&child, pc) == 1) {
            if (tag == DW_TAG_lexical_block)
                return find_inlined_call(&child, pc, call);
            call = child;
            return true;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return false;
}

// Looks for the function containing pc among `parent`'s children, and in it for the outermost
// inlined call containing pc (`found_call`). Searched by hand because libdw 0.188's
// dwarf_getscopes does not look inside namespaces, where clang puts function definitions.
bool find_function_call(Dwarf_Die* parent, Dwarf_Addr pc, Dwarf_Die& call,
                        bool& found_call) noexcept {
    Dwarf_Die child;
    if (dwarf_child(parent, &child) != 0)
        return false;
    do {
        const int tag = dwarf_tag(&child);
        if (tag == DW_TAG_namespace && find_function_call(&child, pc, call, found_call))
            return true;
        if (tag == DW_TAG_subprogram && dwarf_haspc(&child, pc) == 1) {
            found_call = find_inlined_call(&child, pc, call);
            return true;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return false;
}

// The frame is named after the function in the symbol table, which is the outermost function at
// the address. If the line table row belongs to code inlined into it (the always-inline lock
// functions, say), take the line of the outermost inlined call instead, so that file:line lies
// in the function shown.
void use_outermost_call_site(Dwarf_Die* unit, Dwarf_Addr pc, source_line& line) noexcept {
    Dwarf_Die call;
    bool found_call = false;
    if (!find_function_call(unit, pc, call, found_call) || !found_call)
        return;
    Dwarf_Attribute attribute;
    Dwarf_Word file_index = 0;
    Dwarf_Word call_line = 0;
    Dwarf_Files* files = nullptr;
    std::size_t file_count = 0;
    if (dwarf_formudata(dwarf_attr(&call, DW_AT_call_file, &attribute), &file_index) != 0 ||
        dwarf_formudata(dwarf_attr(&call, DW_AT_call_line, &attribute), &call_line) != 0 ||
        dwarf_getsrcfiles(unit, &files, &file_count) != 0 || file_index >= file_count)
        return;
    if (const char* file = dwarf_filesrc(files, file_index, nullptr, nullptr)) {
        line.file = file;
        line.line = static_cast<int>(call_line);
    }
}

source_line find_line(Dwfl_Module* module, Dwarf_Addr address) noexcept {
    source_line result;
    Dwarf_Addr bias = 0;
    Dwarf_Die* const unit = find_unit(module, address, bias);
    if (unit == nullptr)
        return result;
    const Dwarf_Addr pc = address - bias;
    Dwarf_Line* const line = dwarf_getsrc_die(unit, pc);
    if (line == nullptr)
        return result;
    result.file = dwarf_linesrc(line, nullptr, nullptr);
    dwarf_lineno(line, &result.line);
    dwarf_lineaddr(line, &result.start);
    result.start += bias;
    Dwarf_Attribute directory;
    result.directory = dwarf_formstring(dwarf_attr(unit, DW_AT_comp_dir, &directory));
    use_outermost_call_site(unit, pc, result);
    return result;
}

// Fills in `out` for the return address in out.address. `refreshed` is set once the module list
// has been re-read, so that a trace full of unknown addresses re-reads it only once.
void lookup(Dwfl* dwfl, frame& out, bool& refreshed) {
    if (out.address == 0)
        return;
    // A return address points after the call, possibly at the first instruction of the next
    // function or line; the call itself is one byte earlier.
    const Dwarf_Addr call = out.address - 1;
    Dwfl_Module* module = find_module(dwfl, call);
    if (module == nullptr && !refreshed) {
        // A library dlopen'ed after the session started.
        refreshed = true;
        report_modules(dwfl);
        module = find_module(dwfl, call);
    }
    if (module == nullptr)
        return;
    if (const char* path = dwfl_module_info(module, nullptr, nullptr, nullptr, nullptr, nullptr,
                                            nullptr, nullptr))
        out.module = path;

    GElf_Off offset = 0;
    GElf_Sym symbol{};
    if (const char* name = dwfl_module_addrinfo(module, call, &offset, &symbol, nullptr, nullptr,
                                                nullptr)) {
        out.function = demangle(name);
        // Measured from the return address, as the kernel prints "function+offset/size".
        out.offset = offset + 1;
        out.size = symbol.st_size;
    }
    const source_line line = find_line(module, call);
    // A function without debug info (_start, say) placed right after one with it gets the last
    // line of that one; a line that starts before the function cannot be the function's.
    const bool in_function = out.function.empty() || line.start >= call - offset;
    if (line.file != nullptr && in_function) {
        // Build systems compile from their build directory ("../../src/x.cpp"), and a report is
        // read far from there.
        std::filesystem::path file(line.file);
        if (file.is_relative() && line.directory != nullptr)
            file = std::filesystem::path(line.directory) / file;
        out.file = file.lexically_normal().string();
        out.line = static_cast<unsigned>(line.line);
    }
}

// The qualified name of a demangled function: without the return type that template functions
// carry ("void std::lock<...>(...)") and without the parameter list, whose types say nothing
// about whose function it is.
std::string_view qualified_name(std::string_view function) noexcept {
    constexpr std::string_view anonymous = "(anonymous namespace)";
    constexpr std::string_view op = "operator";
    std::size_t start = 0;
    int depth = 0;
    for (std::size_t i = 0; i < function.size(); ++i) {
        const std::string_view rest = function.substr(i);
        if (rest.starts_with(anonymous)) {
            i += anonymous.size() - 1;
            continue;
        }
        // An operator's name may hold brackets ("operator()", "operator<"); its parameter list is
        // the next parenthesis after them.
        if (depth == 0 && rest.starts_with(op) && (i == start || function[i - 1] == ':')) {
            const std::size_t name_end = rest.substr(op.size()).starts_with("()") ? op.size() + 2
                                                                                   : op.size();
            const std::size_t parameters = function.find('(', i + name_end);
            return function.substr(start, parameters == std::string_view::npos
                                              ? std::string_view::npos
                                              : parameters - start);
        }
        switch (function[i]) {
        case '(':
            if (depth == 0)
                return function.substr(start, i - start);
            ++depth;
            break;
        case '<':
        case '[':
        case '{':
            ++depth;
            break;
        case '>':
            if (i > 0 && function[i - 1] == '-')  // "->" in a decltype
                break;
            --depth;
            break;
        case ')':
        case ']':
        case '}':
            --depth;
            break;
        case ' ':
            if (depth == 0)
                start = i + 1;
            break;
        default:
            break;
        }
    }
    return function.substr(start);
}

bool is_fencedep_function(std::string_view function) noexcept {
    const std::string_view name = qualified_name(function);
    if (name.starts_with("fencedep::"))
        return true;
    // std::lock_guard<fencedep::mutex>::lock_guard(...), std::scoped_lock<...>, std::lock<...>:
    // standard wrappers that only forward to fencedep's lock functions.
    return name.starts_with("std::") && name.find("fencedep::") != std::string_view::npos;
}

bool is_libunwind(std::string_view module) noexcept {
    const std::size_t slash = module.rfind('/');
    const std::string_view file =
        slash == std::string_view::npos ? module : module.substr(slash + 1);
    return file.starts_with("libunwind.") || file.starts_with("libunwind-");
}

bool is_fencedep_frame(const frame& f, const address_range& own_module) noexcept {
    if (is_libunwind(f.module))
        return true;
    if (f.function.empty())
        return f.address != 0 && own_module.contains(f.address - 1);
    return is_fencedep_function(f.function);
}

}  // namespace

bool is_fencedep_frame(const frame& f) {
    address_range own_module;
    {
        const std::lock_guard lock(the_session.value.mutex);
        the_session.value.get();
        own_module = the_session.value.own_module;
    }
    return is_fencedep_frame(f, own_module);
}

frame symbolize(std::uintptr_t address) {
    frame result;
    result.address = address;
    const std::lock_guard lock(the_session.value.mutex);
    if (Dwfl* dwfl = the_session.value.get()) {
        bool refreshed = false;
        lookup(dwfl, result, refreshed);
    }
    return result;
}

void hold_symbolizer_lock(bool held) noexcept {
    if (held)
        the_session.value.mutex.lock();
    else
        the_session.value.mutex.unlock();
}

std::vector<frame> symbolize_stack(stack_id id, bool trim_fencedep) {
    const std::span<const std::uintptr_t> addresses = stack_addresses(id);
    std::vector<frame> frames(addresses.size());
    address_range own_module;
    {
        const std::lock_guard lock(the_session.value.mutex);
        Dwfl* const dwfl = the_session.value.get();
        own_module = the_session.value.own_module;
        bool refreshed = false;
        for (std::size_t i = 0; i < addresses.size(); ++i) {
            frames[i].address = addresses[i];
            if (dwfl != nullptr)
                lookup(dwfl, frames[i], refreshed);
        }
    }
    if (trim_fencedep) {
        const auto first_user = std::find_if_not(frames.begin(), frames.end(), [&](const frame& f) {
            return is_fencedep_frame(f, own_module);
        });
        // A trace of nothing but fencedep frames is shown whole rather than as nothing.
        if (first_user != frames.end())
            frames.erase(frames.begin(), first_user);
    }
    return frames;
}

}  // namespace fencedep::detail
