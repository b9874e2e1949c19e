// SPDX-License-Identifier: MIT
// For the internal fence suites: run a case under a given enable_signaling / container_rules mode.
#pragma once

#include <doctest/doctest.h>

#include "config/options.h"
#include "engine/engine.h"

namespace fence_test {

using fencedep::detail::container_rules_mode;
using fencedep::detail::enable_signaling_mode;

// Switches the options in-process (reconfigure resets the engine) and restores the defaults
// with validation off at the end of the scope. Declare it before the case's capture and fences.
class mode_scope {
public:
    explicit mode_scope(enable_signaling_mode signaling,
                        container_rules_mode rules = container_rules_mode::warn) {
        fencedep::detail::options opts;
        opts.enabled = true;
        opts.enable_signaling = signaling;
        opts.container_rules = rules;
        fencedep::detail::reconfigure(opts);
    }
    ~mode_scope() { fencedep::detail::reconfigure(fencedep::detail::options{}); }
    mode_scope(const mode_scope&) = delete;
    mode_scope& operator=(const mode_scope&) = delete;
};

// Splits the calling test case into two subcases, one per enable_signaling mode, and returns
// the mode of the current one: the rest of the case runs once in each.
inline enable_signaling_mode each_mode() {
    enable_signaling_mode mode = enable_signaling_mode::locked;
    SUBCASE("enable_signaling=locked") { mode = enable_signaling_mode::locked; }
    SUBCASE("enable_signaling=unlocked") { mode = enable_signaling_mode::unlocked; }
    return mode;
}

}  // namespace fence_test
