// SPDX-License-Identifier: MIT
// A GoogleTest program (with gtest_main) with fencedep/gtest.h, run by adapters_test.py, which
// checks gtest's own output: which tests fail, with which message, and the exit status.
#include <fencedep/gtest.h>

#include "scenarios.h"

using fencedep::report_kind;
using namespace scenarios;

TEST(Adapter, Abba) { abba(a, b); }

TEST(Adapter, AbbaOnAThread) { abba_on_a_thread(); }

TEST(Adapter, Clean) {
    nest(a, d);
    nest(a, d);
}

// Runs after Clean learned a -> d: a test starts from a fresh state.
TEST(Adapter, TheOtherOrderInATestOfItsOwn) { nest(d, a); }

TEST(Adapter, ExpectedSplat) {
    EXPECT_FENCEDEP_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { abba(a, b); });
}

TEST(Adapter, ExpectedSplatThatDoesNotHappen) {
    EXPECT_FENCEDEP_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { nest(a, b); });
}

TEST(Adapter, ExpectedSplatBetweenOtherClasses) {
    EXPECT_FENCEDEP_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { abba(a, c); });
}

// Passes: a warning is no splat; it goes to the log.
TEST(Adapter, AWarning) { nest_containers(); }

// Fails twice, in the order they happened: the splat, then the failure.
TEST(Adapter, ASplatThenAFailureThatEndsTheTest) {
    abba(a, b);
    FAIL() << "stop";
}

// The splat is made on another thread, while the expectation is open.
TEST(Adapter, ExpectedSplatOnAThread) {
    EXPECT_FENCEDEP_SPLAT(report_kind::circular_dependency, ({"a", "b"}), { abba_on_a_thread(); });
}

// Fails twice: the failure, then the splat the expectation held when the failure ended it.
TEST(Adapter, AnExpectationThatEndsByAFailure) {
    EXPECT_FENCEDEP_SPLAT(report_kind::circular_dependency, ({"a", "b"}), {
        abba(a, c);
        FAIL() << "stop";
    });
}
