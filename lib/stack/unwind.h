// SPDX-License-Identifier: MIT
// Walking the calling thread's stack: return addresses only, as fast as a walk that follows the
// unwind tables can be.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace fencedep::detail {

// Fills `frames` with the calling thread's return addresses, innermost first: the first lies in
// walk_stack itself, the second in its caller. Returns how many it wrote. The result is the one libgcc's
// _Unwind_Backtrace gives, frame for frame: on x86-64, each return address's unwind rule is read
// from its FDE once and cached, so that a walk over known code costs a cache probe and two loads
// per frame; a frame whose rule the cache cannot hold (a signal frame, a CFA computed by a DWARF
// expression), and every other architecture, walk with _Unwind_Backtrace itself.
// `unloads` is the dynamic linker's unload counter (module_table::subs) at the time: cached rules
// are for the code loaded then, and an unload may put other code at the same addresses.
// Lock-free; allocates nothing; opens no descriptor.
std::size_t walk_stack(std::span<std::uintptr_t> frames, unsigned long long unloads) noexcept;

// The same walk through _Unwind_Backtrace alone (tests compare the two); its first frame lies in
// walk_stack_uncached.
std::size_t walk_stack_uncached(std::span<std::uintptr_t> frames) noexcept;

}  // namespace fencedep::detail
