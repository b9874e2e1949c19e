// SPDX-License-Identifier: MIT
// fencedep in GoogleTest. Include it in one file of a gtest binary (more do no harm), with or
// without gtest_main: it appends its event listener to the UnitTest's listeners when the program
// starts, as a listener registered in main() would be.
//
//   - every test starts from a fresh validator state (fencedep::reset()), before its fixture's
//     SetUp();
//   - a splat made while a test runs (SetUp and TearDown included), on any thread, fails that
//     test, with the rendered splat as the failure message, so the run's exit status says so. It
//     fails the test when it is made, so its failure comes in order among the test's other ones;
//   - EXPECT_FENCEDEP_SPLAT(kind, ({"a", "b"}), { code }) runs `code` and checks that it made a
//     splat of that kind between those classes (in any order); that splat then fails nothing. If
//     there is none, the check fails with "expected a circular_dependency splat between a and b;
//     none was reported" (or names the splats that were made instead, which fail the test too).
//
// Validation is switched on as without the adapter: FENCEDEP=1, or fencedep::enable(true) in
// the test binary. Warnings that are not splats, and splats made outside a test (static
// initialization, between tests, by a thread that outlives its test), go to the log as without
// the adapter, and such a splat makes the exit status the exitcode option (66).
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <gtest/gtest.h>

#include <fencedep/test_adapter.h>

namespace fencedep::test_adapter {

// Splats fail the running test as they are made, from the thread that made them (see
// case_monitor): gtest counts a failure from any thread for the test that is running.
class gtest_listener : public ::testing::EmptyTestEventListener {
public:
    void OnTestStart(const ::testing::TestInfo& test) override {
        monitor().begin([file = test.file(), line = test.line()](const std::string& message) {
            ADD_FAILURE_AT(file, line) << message;
        });
    }
    void OnTestEnd(const ::testing::TestInfo&) override { monitor().end(); }
};

namespace gtest_detail {
// The listeners own what they are given.
inline const bool registered =
    (::testing::UnitTest::GetInstance()->listeners().Append(new gtest_listener), true);
}  // namespace gtest_detail

}  // namespace fencedep::test_adapter

// EXPECT_FENCEDEP_SPLAT(kind, (classes), { code }): see the top of this file. `classes` is a
// parenthesized list of class names as reports print them, e.g. ({"config_lock", "stats_lock"}).
#define FENCEDEP_DETAIL_GTEST_FAIL(message) ADD_FAILURE() << (message)
#define EXPECT_FENCEDEP_SPLAT(kind, classes, ...) \
    FENCEDEP_DETAIL_CHECK_SPLAT(FENCEDEP_DETAIL_GTEST_FAIL, kind, classes, __VA_ARGS__)

#endif  // FENCEDEP_CXX20
