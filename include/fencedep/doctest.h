// SPDX-License-Identifier: MIT
// fencedep in doctest. Include it in one file of a doctest binary (more do no harm):
//
//   - every test case starts from a fresh validator state (fencedep::reset()), each time doctest
//     runs it (once per subcase path);
//   - a splat made while a test case runs, on any thread, fails that case, with the rendered
//     splat as the failure message, so the run's exit status says so;
//   - FENCEDEP_CHECK_SPLAT(kind, ({"a", "b"}), { code }) runs `code` and checks that it made a
//     splat of that kind between those classes (in any order); that splat then fails nothing. If
//     there is none, the check fails with "expected a circular_dependency splat between a and b;
//     none was reported" (or names the splats that were made instead, which fail the case too).
//
// Validation is switched on as without the adapter: FENCEDEP=1, or fencedep::enable(true) in
// the test binary. Warnings that are not splats, and splats made outside a test case (static
// initialization, between cases, by a thread that outlives its case), go to the log as without
// the adapter, and such a splat makes the exit status the exitcode option (66).
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <doctest/doctest.h>

#include <fencedep/test_adapter.h>

namespace fencedep::test_adapter::doctest_detail {

// doctest settles a case's verdict before its listeners hear test_case_end, so a failure added
// there would be shown but not counted. The case's function is wrapped instead, for the time the
// case runs: its splats fail it on the test's thread, before doctest counts its failures.
inline const doctest::detail::TestCase* running = nullptr;
inline doctest::detail::funcType running_body = nullptr;

inline void fail_unclaimed() {
    for (const report& r : monitor().end())
        DOCTEST_ADD_FAIL_CHECK_AT(running->m_file.c_str(), running->m_line, unexpected_message(r));
}

inline void run_body() {
    monitor().begin();
    try {
        running_body();
    } catch (...) {
        fail_unclaimed();
        throw;
    }
    fail_unclaimed();
}

struct listener : doctest::IReporter {
    explicit listener(const doctest::ContextOptions&) {}

    void test_case_start(const doctest::TestCaseData& data) override {
        // Every TestCaseData that doctest runs is a registered TestCase, which it does not own as
        // const: swapping the function it calls is how a listener reaches inside the case.
        auto& test = const_cast<doctest::detail::TestCase&>(static_cast<const doctest::detail::TestCase&>(data));
        running = &test;
        running_body = std::exchange(test.m_test, &run_body);
    }
    void test_case_end(const doctest::CurrentTestCaseStats&) override {
        const_cast<doctest::detail::TestCase*>(running)->m_test = std::exchange(running_body, nullptr);
        running = nullptr;
    }

    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace fencedep::test_adapter::doctest_detail

DOCTEST_REGISTER_LISTENER("fencedep", 0, fencedep::test_adapter::doctest_detail::listener);

// FENCEDEP_CHECK_SPLAT(kind, (classes), { code }): see the top of this file. `classes` is a
// parenthesized list of class names as reports print them, e.g. ({"config_lock", "stats_lock"}).
#define FENCEDEP_CHECK_SPLAT(kind, classes, ...) \
    FENCEDEP_DETAIL_CHECK_SPLAT(DOCTEST_FAIL_CHECK, kind, classes, __VA_ARGS__)

#endif  // FENCEDEP_CXX20
