// SPDX-License-Identifier: MIT
// What a report points at and what it is: the user's frame and the stable id that every
// rendering (the text's handler, JSON Lines, SARIF) shares.
#pragma once

#include <span>
#include <string>

#include <fencedep/report.h>

namespace fencedep::detail {

// The first frame of `stack` that is neither fencedep's nor the standard library's; the first
// frame if every one is; an empty frame for an empty stack.
frame user_frame(std::span<const frame> stack);

// report::id, from the report's kind, title, classes and location (see report.h).
std::string report_id(const report& r);

}  // namespace fencedep::detail
