// SPDX-License-Identifier: MIT
// Symbolization of return addresses with elfutils' libdwfl, and trimming of fencedep's own frames.
#include <cxxabi.h>
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

#include "stack/elf_images.h"
#include "stack/modules.h"
#include "stack/never_destroyed.h"
#include "stack/stack.h"
#include "stack/trim.h"

namespace fencedep::detail {
namespace {

const Dwfl_Callbacks process_callbacks = {
    .find_elf = find_elf_image,
    .find_debuginfo = no_separate_debuginfo,
    .section_address = nullptr,
    .debuginfo_path = nullptr,
};

// Re-reads /proc/self/maps (a file read: no lock of the dynamic linker's). Modules still mapped
// keep their loaded symbol tables and DWARF.
void report_modules(Dwfl* dwfl) noexcept {
    dwfl_report_begin(dwfl);
    dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, nullptr, nullptr);
}

// Opening a module's ELF and DWARF costs far more than one lookup, so one libwdfl session serves
// the whole process, under a lock because libdwfl is not thread-safe. Nothing run under that lock
// may take a lock of the dynamic linker's (dladdr, dlopen and dlsym take the one that dlopen holds
// while it runs a library's constructor, and that constructor may be reporting): the module table
// is read before the lock is taken. The session is never ended: reports may be symbolized from
// exit handlers and static destructors, and the pointer in this static keeps the session's memory
// reachable for LeakSanitizer.
struct session {
    std::mutex mutex;
    Dwfl* dwfl = nullptr;
    const module_table* reported = nullptr;  // the module table libdwfl's modules were read with

    // Requires: `mutex` held. Re-reads the mappings when objects were loaded or unloaded since
    // the last time, so that no address is looked up in an object no longer there.
    Dwfl* get(const module_table& now) noexcept {
        if (dwfl == nullptr) {
            dwfl = dwfl_begin(&process_callbacks);
            if (dwfl == nullptr)
                return nullptr;
        }
        if (reported != &now) {
            report_modules(dwfl);
            reported = &now;
        }
        return dwfl;
    }
};

constinit never_destroyed<session> the_session;

struct free_deleter {
    void operator()(char* pointer) const noexcept { std::free(pointer); }
};

std::string demangle(const char* symbol) {
    // Separate debug files name versioned symbols "name@@VERSION", which would not demangle.
    const std::string name(symbol, std::strcspn(symbol, "@"));
    // Only a mangled name is demangled: __cxa_demangle also reads a bare type code, so a C
    // variable named "a" or "b" would come out as "signed char" or "bool".
    if (!name.starts_with("_Z"))
        return name;
    int status = 0;
    const std::unique_ptr<char, free_deleter> demangled(
        abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status));
    return status == 0 && demangled ? std::string(demangled.get()) : name;
}

// libdwfl bounds a module by its file-backed mappings, which leaves out the zero pages of .bss
// past the end of the file (where lock_class_keys tend to be); the module table has the whole
// object, and its first segment is file-backed.
Dwfl_Module* find_module(Dwfl* dwfl, Dwarf_Addr address, const loaded_module& object) noexcept {
    if (Dwfl_Module* module = dwfl_addrmodule(dwfl, address))
        return module;
    return dwfl_addrmodule(dwfl, object.low);
}

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

// Appends to `chain` the inlined calls under `scope` that contain pc, outermost first, looking
// through the lexical blocks between them.
void find_inlined_calls(Dwarf_Die* scope, Dwarf_Addr pc, std::vector<Dwarf_Die>& chain) {
    Dwarf_Die child;
    if (dwarf_child(scope, &child) != 0)
        return;
    do {
        if (dwarf_haspc(&child, pc) == 1) {
            if (dwarf_tag(&child) == DW_TAG_inlined_subroutine)
                chain.push_back(child);
            find_inlined_calls(&child, pc, chain);
            return;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
}

// The function containing pc among `parent`'s children, then the inlined calls in it that
// contain pc, outermost first. Searched by hand because libdw 0.188's dwarf_getscopes does not
// look inside namespaces, where clang puts function definitions.
bool find_scopes(Dwarf_Die* parent, Dwarf_Addr pc, std::vector<Dwarf_Die>& chain) {
    Dwarf_Die child;
    if (dwarf_child(parent, &child) != 0)
        return false;
    do {
        const int tag = dwarf_tag(&child);
        if (tag == DW_TAG_namespace && find_scopes(&child, pc, chain))
            return true;
        if (tag == DW_TAG_subprogram && dwarf_haspc(&child, pc) == 1) {
            chain.push_back(child);
            find_inlined_calls(&child, pc, chain);
            return true;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return false;
}

// Follows an inlined call or a concrete function to the DIE that declares the function, whose
// place in the tree gives its scope.
Dwarf_Die declaration_of(Dwarf_Die die) {
    Dwarf_Attribute attribute;
    for (const int reference : {DW_AT_abstract_origin, DW_AT_specification}) {
        Dwarf_Die target;
        while (dwarf_formref_die(dwarf_attr(&die, reference, &attribute), &target) != nullptr)
            die = target;
    }
    return die;
}

// The DIEs from `parent` down to (without) the DIE at `target`. A DIE's subtree lies between its
// offset and its next sibling's, so only one child per level is entered.
bool path_to(Dwarf_Die* parent, Dwarf_Off target, std::vector<Dwarf_Die>& path) {
    Dwarf_Die child;
    if (dwarf_child(parent, &child) != 0)
        return false;
    Dwarf_Die before;
    bool have_before = false;
    do {
        const Dwarf_Off offset = dwarf_dieoffset(&child);
        if (offset == target)
            return true;
        if (offset > target)
            break;
        before = child;
        have_before = true;
    } while (dwarf_siblingof(&child, &child) == 0);
    if (!have_before)
        return false;
    path.push_back(before);
    return path_to(&path.back(), target, path);
}

// The name of a function from its DWARF: demangled from its linkage name as the symbol table's
// are; without one (GCC gives none to functions with internal linkage, lambdas among them),
// qualified by the namespaces, classes and functions it is declared in, without parameters.
std::string function_name(Dwarf_Die function) {
    Dwarf_Attribute attribute;
    for (const int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
        if (const char* text = dwarf_formstring(dwarf_attr_integrate(&function, name, &attribute)))
            return demangle(text);
    }
    Dwarf_Die declaration = declaration_of(function);
    const char* const own = dwarf_diename(&declaration);
    Dwarf_Die unit;
    std::vector<Dwarf_Die> path;
    if (dwarf_diecu(&declaration, &unit, nullptr, nullptr) == nullptr ||
        !path_to(&unit, dwarf_dieoffset(&declaration), path))
        return own != nullptr ? own : "";
    std::string qualified;
    for (Dwarf_Die& scope : path) {
        const char* const name = dwarf_diename(&scope);
        switch (dwarf_tag(&scope)) {
        case DW_TAG_namespace:
            qualified += name != nullptr ? name : "(anonymous namespace)";
            break;
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
            // A lambda's closure is an unnamed class (GCC: structure) with a function; other
            // unnamed classes seldom have functions, and none that are not defined in them.
            qualified += name != nullptr ? name : "<lambda>";
            break;
        case DW_TAG_union_type:
            qualified += name != nullptr ? name : "(anonymous union)";
            break;
        case DW_TAG_subprogram:
            // A local class's function (a lambda's operator()) is named after the enclosing
            // function, which says everything of the scopes outside it; "()" marks it as one, as
            // in a demangled name.
            qualified = function_name(scope);
            if (qualified.find('(') == std::string::npos)
                qualified += "()";
            break;
        default:
            continue;
        }
        qualified += "::";
    }
    return qualified + (own != nullptr ? own : "");
}

// Build systems compile from their build directory ("../../src/x.cpp"), and a report is read far
// from there.
std::string absolute_file(const char* file, const char* directory) {
    std::filesystem::path path(file);
    if (path.is_relative() && directory != nullptr)
        path = std::filesystem::path(directory) / path;
    return path.lexically_normal().string();
}

// Where an inlined call was made: its DW_AT_call_file and DW_AT_call_line.
bool call_site(Dwarf_Die* unit, Dwarf_Die* call, const char* directory, frame& out) {
    Dwarf_Attribute attribute;
    Dwarf_Word file_index = 0;
    Dwarf_Word line = 0;
    Dwarf_Files* files = nullptr;
    std::size_t file_count = 0;
    if (dwarf_formudata(dwarf_attr(call, DW_AT_call_file, &attribute), &file_index) != 0 ||
        dwarf_formudata(dwarf_attr(call, DW_AT_call_line, &attribute), &line) != 0 ||
        dwarf_getsrcfiles(unit, &files, &file_count) != 0 || file_index >= file_count)
        return false;
    const char* const file = dwarf_filesrc(files, file_index, nullptr, nullptr);
    if (file == nullptr)
        return false;
    out.file = absolute_file(file, directory);
    out.line = static_cast<unsigned>(line);
    return true;
}

// Fills in file:line of the frames for the call at `pc` in `out` (whose last element is the
// outermost, named from the symbol table), adding one frame in front of it per inlined call,
// innermost first. `function_start` is where the symbol table says the outermost function starts.
void add_source(Dwfl_Module* module, Dwarf_Addr pc, Dwarf_Addr function_start,
                std::vector<frame>& out) {
    Dwarf_Addr bias = 0;
    Dwarf_Die* const unit = find_unit(module, pc, bias);
    if (unit == nullptr)
        return;
    Dwarf_Line* const line = dwarf_getsrc_die(unit, pc - bias);
    if (line == nullptr)
        return;
    Dwarf_Addr line_start = 0;
    dwarf_lineaddr(line, &line_start);
    // A function without debug info (_start, say) placed right after one with it gets the last
    // line of that one; a line that starts before the function cannot be the function's.
    if (line_start + bias < function_start)
        return;
    Dwarf_Attribute attribute;
    const char* const directory = dwarf_formstring(dwarf_attr(unit, DW_AT_comp_dir, &attribute));

    std::vector<Dwarf_Die> scopes;
    find_scopes(unit, pc - bias, scopes);
    const std::size_t calls = scopes.empty() ? 0 : scopes.size() - 1;
    const frame outermost = out.back();
    out.resize(out.size() + calls, outermost);
    const std::span<frame> chain = std::span(out).last(calls + 1);
    // chain[0] is the innermost function, at the line table's line; each function outside it
    // is at the line where it made the inlined call that chain[i - 1] is.
    int number = 0;
    dwarf_lineno(line, &number);
    chain[0].file = absolute_file(dwarf_linesrc(line, nullptr, nullptr), directory);
    chain[0].line = static_cast<unsigned>(number);
    for (std::size_t i = 0; i < calls; ++i) {
        Dwarf_Die& call = scopes[scopes.size() - 1 - i];
        frame& inlined = chain[i];
        inlined.function = function_name(call);
        inlined.offset = 0;
        inlined.size = 0;
        inlined.inlined = true;
        call_site(unit, &call, directory, chain[i + 1]);
    }
    // An object without a symbol table (stripped) still has the function in its DWARF.
    if (chain[calls].function.empty() && !scopes.empty())
        chain[calls].function = function_name(scopes.front());
}

// Appends the frames for return address `address` in `object`, innermost first.
void lookup(Dwfl* dwfl, const loaded_module& object, std::uintptr_t address,
            std::vector<frame>& out) {
    frame& outermost = out.emplace_back();
    outermost.address = address;
    outermost.module = object.path;
    outermost.module_offset = address - object.base;
    // A return address points after the call, possibly at the first instruction of the next
    // function or line; the call itself is one byte earlier.
    const Dwarf_Addr call = address - 1;
    Dwfl_Module* const module = find_module(dwfl, call, object);
    if (module == nullptr)
        return;
    attach_shared_dwarf(module);
    GElf_Off offset = 0;
    GElf_Sym symbol{};
    if (const char* name = dwfl_module_addrinfo(module, call, &offset, &symbol, nullptr, nullptr,
                                                nullptr)) {
        outermost.function = demangle(name);
        // Measured from the return address, as the kernel prints "function+offset/size".
        outermost.offset = offset + 1;
        outermost.size = symbol.st_size;
    }
    add_source(module, call, outermost.function.empty() ? 0 : call - offset, out);
}

frame located(const module_table& modules, std::uintptr_t address) {
    frame f;
    f.address = address;
    if (const loaded_module* object = address != 0 ? modules.find(address - 1) : nullptr) {
        f.module = object->path;
        f.module_offset = address - object->base;
    }
    return f;
}

}  // namespace

std::vector<frame> symbolize_inline_chain(std::uintptr_t address) {
    const module_table& now = current_modules();
    const loaded_module* const object = address != 0 ? now.find(address - 1) : nullptr;
    if (object == nullptr)
        return {located(now, address)};
    std::vector<frame> chain;
    {
        const std::lock_guard lock(the_session.value.mutex);
        if (Dwfl* dwfl = the_session.value.get(now))
            lookup(dwfl, *object, address, chain);
    }
    if (chain.empty())
        return {located(now, address)};
    return chain;
}

frame symbolize(std::uintptr_t address) {
    const std::vector<frame> chain = symbolize_inline_chain(address);
    return chain[fencedep_frames(chain)];
}

void hold_symbolizer_lock(bool held) noexcept {
    if (held)
        the_session.value.mutex.lock();
    else
        the_session.value.mutex.unlock();
}

std::vector<frame> symbolize_stack(stack_id id, bool trim_fencedep) {
    const std::span<const std::uintptr_t> addresses = stack_addresses(id);
    if (addresses.empty())
        return {};
    const module_table& captured = *stack_modules(id);
    const module_table& now = current_modules();
    std::vector<frame> frames;
    {
        const std::lock_guard lock(the_session.value.mutex);
        Dwfl* const dwfl = the_session.value.get(now);
        for (const std::uintptr_t address : addresses) {
            const loaded_module* const object = address != 0 ? captured.find(address - 1) : nullptr;
            // An object unloaded since the capture keeps its name and offset: whatever is at its
            // addresses now is other code.
            if (dwfl != nullptr && now.holds(object))
                lookup(dwfl, *object, address, frames);
            else
                frames.push_back(located(captured, address));
        }
    }
    if (trim_fencedep)
        frames.erase(frames.begin(),
                     frames.begin() + static_cast<std::ptrdiff_t>(fencedep_frames(frames)));
    return frames;
}

std::vector<frame> unsymbolized_stack(stack_id id, bool trim_fencedep) {
    const std::span<const std::uintptr_t> addresses = stack_addresses(id);
    if (addresses.empty())
        return {};
    const module_table& captured = *stack_modules(id);
    std::vector<frame> frames;
    frames.reserve(addresses.size());
    for (const std::uintptr_t address : addresses)
        frames.push_back(located(captured, address));
    if (trim_fencedep) {
        const auto first_user = std::find_if_not(frames.begin(), frames.end(), in_fencedep_module);
        // As in symbolize_stack, a trace of nothing but fencedep frames is shown whole.
        if (first_user != frames.end())
            frames.erase(frames.begin(), first_user);
    }
    return frames;
}

frame locate(std::uintptr_t address) {
    return located(current_modules(), address);
}

}  // namespace fencedep::detail
