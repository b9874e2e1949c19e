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

// The options of one enable_signaling mode, switched for the life of a mode case (below);
// `mode` tells the body which one it runs in. A fixture that needs more derives from it, so
// that the options are switched before its own members (a capture, locks) are built.
struct mode_case {
    explicit mode_case(enable_signaling_mode signaling) : mode(signaling), modes(signaling) {}
    const enable_signaling_mode mode;
    mode_scope modes;
};

}  // namespace fence_test

// A test case run in each enable_signaling mode: two doctest cases, "<name> [enable_signaling=
// locked]" and "... [enable_signaling=unlocked]", sharing one body. Separate cases, not two
// SUBCASEs: doctest enters one subcase per level and run, so subcases that follow a mode split
// are siblings of it and would each run in one mode only. The body runs as a member of a class
// derived from `fixture` (fence_test::mode_case or a class derived from it, constructible from
// the mode), so its members and `mode` are in scope, as in TEST_CASE_FIXTURE.
#define FENCE_MODE_CASE_FIXTURE(fixture, name) \
    FENCE_MODE_CASE_FIXTURE_IMPL(fixture, name, DOCTEST_ANONYMOUS(FENCE_MODE_CASE_))
#define FENCE_MODE_CASE(name) FENCE_MODE_CASE_FIXTURE(fence_test::mode_case, name)

#define FENCE_MODE_CASE_FIXTURE_IMPL(fixture, name, body_class)                              \
    namespace {                                                                              \
    struct body_class : fixture {                                                            \
        using fixture_type = fixture;                                                        \
        using fixture_type::fixture_type;                                                    \
        void body();                                                                         \
    };                                                                                       \
    }                                                                                        \
    TEST_CASE(name " [enable_signaling=locked]") {                                           \
        body_class run(fence_test::enable_signaling_mode::locked);                           \
        run.body();                                                                          \
    }                                                                                        \
    TEST_CASE(name " [enable_signaling=unlocked]") {                                         \
        body_class run(fence_test::enable_signaling_mode::unlocked);                         \
        run.body();                                                                          \
    }                                                                                        \
    void body_class::body()
