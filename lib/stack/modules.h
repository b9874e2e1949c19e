// SPDX-License-Identifier: MIT
// The table of loaded objects (executable, shared libraries), as the dynamic linker reports them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "stack/stack.h"

namespace fencedep::detail {

// One load of one object. A record is shared by every table in which the object stays loaded at
// the same place, so that two tables name the same load with the same pointer.
struct loaded_module {
    std::string path;        // absolute; the executable's is /proc/self/exe's target
    std::uintptr_t base = 0; // load bias: an address minus base is its address in the ELF file
    std::uintptr_t low = 0;  // the span of the PT_LOAD segments, .bss (memory size) included
    std::uintptr_t high = 0;
    bool main_program = false;
    // The segments mapped without write permission (code, read-only data), as [low, high).
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> read_only;
};

// The objects loaded at one moment. Tables are immutable and never freed: each interned stack
// trace points at the table current when it was captured.
struct module_table {
    unsigned long long adds = 0;  // the dynamic linker's load and unload counters at the time
    unsigned long long subs = 0;
    std::vector<const loaded_module*> modules;  // sorted by `low`
    const module_table* previous = nullptr;     // keeps older tables reachable (LeakSanitizer)

    // The module whose segments span `address`, or null.
    const loaded_module* find(std::uintptr_t address) const noexcept;
    bool holds(const loaded_module* module) const noexcept;
};

// The objects loaded now. The table is rebuilt (with dl_iterate_phdr) only when the dynamic
// linker's load or unload counters have moved since the last one; otherwise this costs one
// dl_iterate_phdr step. Takes no lock that the dynamic linker holds while it runs constructors
// (dl_iterate_phdr takes only its list-writing lock, which dlopen does not hold then), so it may be
// called from a library constructor, and must be called outside the symbolizer's lock.
const module_table& current_modules();

// Whether `address` lies in a segment of a loaded object that is mapped read-only: a string
// literal or other compile-time constant, as opposed to heap, stack or writable static memory.
bool in_read_only_image(const void* address);

// Whether `address` lies in a writable segment of a loaded object (.data, .bss): static storage.
bool in_writable_image(const void* address);

// Whether `address` lies in any loaded object, as opposed to heap, stack or anonymous memory.
bool in_loaded_image(const void* address);

// The table that was current when trace `id` was captured or interned; null for 0.
const module_table* stack_modules(stack_id id);

// fork() support: holds or releases the lock that serializes rebuilding (see hold_stack_locks).
void hold_module_lock(bool held) noexcept;

}  // namespace fencedep::detail
