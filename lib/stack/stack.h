// SPDX-License-Identifier: MIT
// Stack traces: capture (unwind.cpp), interning (the stack depot) and symbolization (libdw).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <fencedep/report.h>

namespace fencedep::detail {

// Index of an interned stack trace; 0 is "no stack".
using stack_id = std::uint32_t;

// Captures the calling thread's stack, at most `max_frames` frames, skipping the `skip`
// innermost frames above the caller of capture_stack, and interns it in the depot.
// Identical traces get the same id. Never called on the hot path (a new edge or a report only).
// Opens no descriptor and takes no lock of the dynamic linker's.
// Allocates (depot growth); callers hold the engine's re-entry guard.
// Returns 0 if the unwinder found no frame or the depot cannot grow.
stack_id capture_stack(unsigned max_frames, unsigned skip = 0);

// Interns a trace given as raw return addresses (tests use it to build traces by hand).
stack_id intern_stack(std::span<const std::uintptr_t> addresses);

// The raw addresses of an interned trace (empty for 0). The memory stays valid for the life of
// the process: traces are never freed.
std::span<const std::uintptr_t> stack_addresses(stack_id id);

// Symbolizes one return address (looking up the call before it) for an "at:" line: of the
// functions inlined at that call, the innermost that is not fencedep's own (see symbolize_stack),
// or the innermost of all if every one is fencedep's. Function (demangled) + offset/size come
// from the ELF symbol tables, so executables need not be linked with -rdynamic, and file:line from
// DWARF where present. Data addresses (a lock_class_key in .bss) are named by their symbol.
// Takes no lock that the dynamic linker holds while it runs a library's constructor.
// The whole inline chain at a return address, innermost first, the last being the function
// the code lies in; never empty (an unknown address gives one frame with its module+offset).
std::vector<frame> symbolize_inline_chain(std::uintptr_t address);

frame symbolize(std::uintptr_t address);

// Symbolizes a whole trace against the objects that were loaded when it was captured: one frame
// per function, with a call inlined into another expanded into a frame of its own (marked
// `inlined`) at the same address, innermost first, each with its own file:line (an outer one's
// is the line of its inlined call). A frame in an object unloaded since is left with its module
// and module_offset only. With `trim_fencedep`, leading frames that are fencedep's own are
// dropped, so the first frame shown is the user's: frames in fencedep's shared library,
// functions in namespace fencedep, the standard lock wrappers (lock_guard, unique_lock,
// scoped_lock, shared_lock, std::lock, std::try_lock and their helpers) instantiated on fencedep
// types, and standard library code inlined into any of those. A trace of nothing but
// fencedep frames is kept whole.
std::vector<frame> symbolize_stack(stack_id id, bool trim_fencedep = true);

// A trace without symbolization (the symbolize=0 option), as cheap as a report allows: addresses
// with the module and module_offset they had when captured. With `trim_fencedep`, leading frames
// in fencedep's shared library are dropped; fencedep's objects linked into the
// executable cannot be told from the user's code without names, so they stay.
std::vector<frame> unsymbolized_stack(stack_id id, bool trim_fencedep = true);

// One address's module and module_offset as loaded now, without symbolization.
frame locate(std::uintptr_t address);

// fork() support: with `held`, takes the depot's, the module table's and the symbolizer's
// internal locks (in that order), so that no other thread holds them while the process is copied; without, releases
// them. The engine's pthread_atfork handlers call it around fork().
void hold_stack_locks(bool held) noexcept;
// The symbolizer's half of hold_stack_locks.
void hold_symbolizer_lock(bool held) noexcept;

}  // namespace fencedep::detail
