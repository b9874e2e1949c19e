// SPDX-License-Identifier: MIT
// For interposers: what a library that forwards another lock API to the validator (the pthread
// preload behind fencedep-run) needs beyond lock_map.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <fencedep/lockdep.h>

namespace fencedep::shim {

// Returns whether the calling thread is inside fencedep: in its slow paths, its symbolizer, its
// report handler or its fork handlers. An interposer passes such a thread's lock calls straight to
// the real functions: they are fencedep's own locks, or locks taken by what fencedep calls
// (malloc, the unwinder, libdw, the user's report handler), and validating them would recurse.
// Costs one thread-local load.
FENCEDEP_API bool inside_validator() noexcept;

// How the preload classifies locks it never saw initialized (FENCEDEP_OPTIONS=preload_classes):
// site, the class of the first place that takes the lock, or address, one class per lock.
enum class class_rule { site, address };
FENCEDEP_API class_rule preload_classes() noexcept;

// Sets the function called after every change of enabled(), on the thread that made it, perhaps
// with the engine's lock held: it must not call into fencedep. The pthread preload uses it to
// send its lock calls straight to the real functions while validation is off. One listener; a
// second call replaces the first.
FENCEDEP_API void on_gate_change(void (*listener)() noexcept) noexcept;

// Returns whether `address` lies in the writable static storage (.data, .bss) of a loaded object,
// where objects of static storage duration live: false for heap, stack and thread-local memory.
// Walks the table of loaded objects (rebuilt only after a dlopen or dlclose); not for a hot path.
FENCEDEP_API bool static_storage(const void* address) noexcept;

// Returns the return address on the calling thread's stack that is the user's call:
// `return_address` itself when the code there is the user's, else the innermost one on the stack
// that is (a call made through out-of-line standard library code, as an unoptimized build's
// std::mutex::lock is). Returns `return_address` when no frame is the user's. Symbolizes
// `return_address` once per distinct address and may walk the stack; not for a hot path.
FENCEDEP_API const void* user_call_site(const void* return_address) noexcept;

}  // namespace fencedep::shim

#endif  // FENCEDEP_CXX20
