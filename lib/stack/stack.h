// SPDX-License-Identifier: MIT
// Stack traces: capture (libunwind), interning (the stack depot) and symbolization (libdw).
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
// Allocates (depot growth); callers hold the engine's re-entry guard.
// Returns 0 if the unwinder found no frame or the depot cannot grow.
stack_id capture_stack(unsigned max_frames, unsigned skip = 0);

// Interns a trace given as raw return addresses (tests use it to build traces by hand).
stack_id intern_stack(std::span<const std::uintptr_t> addresses);

// The raw addresses of an interned trace (empty for 0). The memory stays valid for the life of
// the process: traces are never freed.
std::span<const std::uintptr_t> stack_addresses(stack_id id);

// Symbolizes one address: function (demangled) + offset/size from the ELF symbol tables (so
// executables need not be linked with -rdynamic), file:line from DWARF where present.
frame symbolize(std::uintptr_t address);

// Symbolizes a whole trace. With `trim_fencedep`, leading frames that belong to fencedep itself
// (functions in namespace fencedep, and std:: lock wrappers instantiated on fencedep types) are
// dropped, so the first frame shown is the user's.
std::vector<frame> symbolize_stack(stack_id id, bool trim_fencedep = true);

// Whether a symbolized frame is fencedep's own (as trimming decides it).
bool is_fencedep_frame(const frame& f);

// fork() support: with `held`, takes the depot's and the symbolizer's internal locks (in that
// order), so that no other thread holds them while the process is copied; without, releases
// them. The engine's pthread_atfork handlers call it around fork().
void hold_stack_locks(bool held) noexcept;
// The symbolizer's half of hold_stack_locks.
void hold_symbolizer_lock(bool held) noexcept;

}  // namespace fencedep::detail
