// SPDX-License-Identifier: MIT
// Throws across a translation-unit boundary, so that unwinding passes through frames of its own.
#include "throw_helper.h"

#include <mutex>
#include <stdexcept>

namespace engine_test {

void throw_under_guard(fencedep::mutex& lock) {
    std::lock_guard guard(lock);
    throw std::runtime_error("thrown under a fencedep::mutex");
}

void throw_under_two_guards(fencedep::mutex& outer, fencedep::mutex& inner) {
    std::lock_guard guard(outer);
    throw_under_guard(inner);
}

}  // namespace engine_test
