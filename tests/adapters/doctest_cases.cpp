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

// Fails twice, in the order they happened: the splat, then the failure.
TEST_CASE("a splat then a failure that ends the case") {
    abba(a, b);
    FAIL("stop");
}

// The splat is made on another thread, while the expectation is open.
TEST_CASE("expected splat on a thread") {
    FENCEDEP_CHECK_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { abba_on_a_thread(); });
}

// Fails twice: the failure, then the splat the expectation held when the failure ended it.
TEST_CASE("an expectation that ends by a failure") {
    FENCEDEP_CHECK_SPLAT(report_kind::circular_dependency, ({"a", "b"}), {
        abba(a, c);
        FAIL("stop");
    });
}

// Passes: each subcase path runs the body from a fresh state, so the second path's order is no
// inversion of the first's.
TEST_CASE("subcase paths each start afresh") {
    SUBCASE("one order") { nest(a, b); }
    SUBCASE("the other order") { nest(b, a); }
}

// Fails once: a splat in a path after the first fails the case as well.
TEST_CASE("a splat in the second subcase path") {
    SUBCASE("clean") { nest(a, b); }
    SUBCASE("abba") { abba(a, b); }
}
