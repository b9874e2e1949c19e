// SPDX-License-Identifier: MIT
// A doctest program with fencedep/doctest.h, run by adapters_test.py, which checks doctest's own
// output: which cases fail, with which message, and the exit status.
#include <fencedep/doctest.h>

#include "scenarios.h"

using fencedep::report_kind;
using namespace scenarios;

TEST_CASE("abba") { abba(a, b); }

TEST_CASE("abba on a thread") { abba_on_a_thread(); }

TEST_CASE("clean") {
    nest(a, d);
    nest(a, d);
}

// Runs after "clean" learned a -> d: a case starts from a fresh state.
TEST_CASE("the other order in a case of its own") { nest(d, a); }

TEST_CASE("expected splat") {
    FENCEDEP_CHECK_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { abba(a, b); });
}

TEST_CASE("expected splat that does not happen") {
    FENCEDEP_CHECK_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { nest(a, b); });
}

TEST_CASE("expected splat between other classes") {
    FENCEDEP_CHECK_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { abba(a, c); });
}

// Passes: a warning is no splat; it goes to the log.
TEST_CASE("a warning") { nest_containers(); }

// Fails twice: the failure, then the splat.
TEST_CASE("a splat then a failure that ends the case") {
    abba(a, b);
    FAIL("stop");
}
