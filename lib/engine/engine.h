// SPDX-License-Identifier: MIT
// The engine's interface to the other layers of the library (not installed).
#pragma once

#include <string>

namespace fencedep::detail {

// Reports a fence container rule violation (report_kind::fence_container_nesting), with the
// current stack, unless the container_rules option is off. `what` is the one-line description
// ("fence_array ctx 9 seqno 1 was given a fence_chain ctx 12 seqno 7 as child 0"), `advice` the
// fix to suggest. With container_rules=error the report counts as a splat, with warn it does not.
// Safe to call with fence locks held; the report is emitted before this returns.
void report_container_nesting(const std::string& what, const std::string& advice);

// Returns how many locks the calling thread holds according to the validator (0 when off).
unsigned held_lock_count() noexcept;

}  // namespace fencedep::detail
