// SPDX-License-Identifier: MIT
// fencedep in doctest. Include it in one file of a doctest binary (more do no harm):
//
//   - every test case starts from a fresh validator state (fencedep::reset()), each time doctest
//     runs it (once per subcase path);
//   - a splat made while a test case runs, on any thread, fails that case, with the rendered
//     splat as the failure message, so the run's exit status says so. It fails the case when it
//     is made, so its failure comes in order among the case's other ones. That needs doctest's
//     thread-safe asserts: with DOCTEST_CONFIG_NO_MULTITHREADING, take fencedep locks on the
//     test's thread only;
//   - FENCEDEP_CHECK_SPLAT(kind, ({"a", "b"}), { code }) runs `code` and checks that it made a
//     splat of that kind between those classes (in any order); that splat then fails nothing. If
//     there is none, the check fails with "expected a circular_dependency splat between a and b;
//     none was reported" (or names the splats that were made instead, which fail the case too).
//
// Validation is switched on as without the adapter: FENCEDEP=1, or fencedep::enable(true) in
// the test binary. Warnings that are not splats, and splats made outside a test case (static
// initialization, between cases, by a thread that outlives its case), go to the log as without
// the adapter, and such a splat makes the exit status the exitcode option (66). The adapter uses
// doctest's documented interface only: a listener (DOCTEST_REGISTER_LISTENER) and
// DOCTEST_ADD_FAIL_CHECK_AT.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <doctest/doctest.h>

#include <fencedep/test_adapter.h>

namespace fencedep::test_adapter::doctest_detail {

// doctest's reporter interface has no default for any event: a listener that hears a few of them
// takes the others, ignored, from here.
struct quiet_listener : doctest::IReporter {
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

// A listener, doctest's documented way to hear of each case. It sees neither the end of a case's
// body nor anything between it and doctest's verdict, so splats fail the case as they are made
// (see case_monitor), with DOCTEST_ADD_FAIL_CHECK_AT at the case's own file and line.
struct listener : quiet_listener {
    explicit listener(const doctest::ContextOptions&) {}

    void test_case_start(const doctest::TestCaseData& test) override {
        // The registered case outlives the run, and with it its file name.
        monitor().begin([file = test.m_file.c_str(), line = static_cast<int>(test.m_line)](const std::string& message) {
            DOCTEST_ADD_FAIL_CHECK_AT(file, line, message);
        });
    }
    // doctest runs the case's body again for each subcase path after the first.
    void test_case_reenter(const doctest::TestCaseData&) override { fencedep::reset(); }
    void test_case_end(const doctest::CurrentTestCaseStats& stats) override {
        const std::vector<report> failed = monitor().end();
        // A failure counts only until doctest settles the verdict, just before this call: a splat
        // that a thread still running made in between was shown but not counted. If nothing was
        // counted, the splats go to the log too, so that the exit status says so.
        if ((stats.failure_flags & doctest::TestCaseFailureReason::AssertFailure) == 0)
            for (const report& r : failed)
                log_report(r);
    }

};

}  // namespace fencedep::test_adapter::doctest_detail

DOCTEST_REGISTER_LISTENER("fencedep", 0, fencedep::test_adapter::doctest_detail::listener);

// FENCEDEP_CHECK_SPLAT(kind, (classes), { code }): see the top of this file. `classes` is a
// parenthesized list of class names as reports print them, e.g. ({"config_lock", "stats_lock"}).
#define FENCEDEP_CHECK_SPLAT(kind, classes, ...) \
    FENCEDEP_DETAIL_CHECK_SPLAT(DOCTEST_FAIL_CHECK, kind, classes, __VA_ARGS__)

#endif  // FENCEDEP_CXX20
