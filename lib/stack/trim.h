// SPDX-License-Identifier: MIT
// Which frames of a trace are fencedep's own, so that a report's stacks start at the user's code.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <fencedep/report.h>

namespace fencedep::detail {

// Whether the frame lies in fencedep's shared library or its pthread preload, by its address
// and module alone (no symbolization needed). fencedep's objects linked into the executable are not told
// apart this way: the executable holds the user's code too.
bool in_fencedep_module(const frame& f);

// Whether a source file is a standard library header (libstdc++'s or libc++'s).
bool standard_library_file(std::string_view file);
// Whether a frame is standard library code: by its file, or without one by its namespace.
bool standard_library_frame(const frame& f);

// How many of the leading frames (inline chains expanded, innermost first, as symbolize_stack
// makes them) are fencedep's own; 0 if all of them are, so that such a trace is kept whole.
// A frame is fencedep's by what it is, never by what its parameters mention: by its module
// (in_fencedep_module); by its function, in namespace fencedep or one of the standard lock
// wrappers instantiated on a fencedep type; or, for standard library code, by what it serves:
// code that calls fencedep's frame below it, or is inlined into fencedep's frame above it.
std::size_t fencedep_frames(std::span<const frame> frames);

// Whether one frame, seen on its own (an "at:" site), is fencedep's: in its module, in namespace
// fencedep, or a standard lock wrapper instantiated on a fencedep type.
bool is_fencedep_frame(const frame& f);

}  // namespace fencedep::detail
