// SPDX-License-Identifier: MIT
// The engine's interface to the other layers of the library (not installed).
#pragma once

#include <string>
#include <string_view>

#include "config/options.h"
// Context frames, pushed inline by the fence layer on every operation.
#include "engine/frames.h"

namespace fencedep::detail {

// Reports a fence container rule violation (report_kind::fence_container_nesting), with the
// current stack, unless the container_rules option is off: once per `call_site` (the return
// address of the fence function the user called) and pair of kinds ("fence_array" given a
// "fence_chain"). `what` is the one-line description ("fence_array ctx 9 seqno 1 was given a
// fence_chain ctx 12 seqno 7 as child 0"), `advice` the fix to suggest. With
// container_rules=error the report counts as a splat, with warn it does not.
// Safe to call with fence locks held; the report is emitted before this returns.
void report_container_nesting(const void* call_site, std::string_view container_kind, std::string_view child_kind,
                              const std::string& what, const std::string& advice);

// Replaces the options in force and resets the engine with the new table capacities, as if the
// process had started with them. Same contract as fencedep::reset(). Tests use it to run with
// tiny tables or another enable_signaling mode without a subprocess.
void reconfigure(const options& opts);

// Returns how many locks the calling thread holds according to the validator (0 when off).
unsigned held_lock_count() noexcept;

// Sets the function that records the dependencies every run starts with (the fence layer's
// hierarchy of reservation lock, memory reclaim and fence waits, as the kernel records it at
// boot). The engine runs it on the calling thread, outside its lock, whenever validation comes
// on with a fresh graph: at enable(true) and after reset(), once per graph. Setting it while
// validation is on runs it at once.
void set_primer(void (*primer)() noexcept);

}  // namespace fencedep::detail
