// SPDX-License-Identifier: MIT
// Functions of another translation unit that throw while fencedep locks are held.
#pragma once

#include <fencedep/mutex.h>

namespace engine_test {

// Throws std::runtime_error from inside a std::lock_guard on `lock`.
void throw_under_guard(fencedep::mutex& lock);

// Takes `outer`, then calls throw_under_guard(inner); the exception leaves both scopes.
void throw_under_two_guards(fencedep::mutex& outer, fencedep::mutex& inner);

}  // namespace engine_test
