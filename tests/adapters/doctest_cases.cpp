// SPDX-License-Identifier: MIT
// A doctest program with fencedep/doctest.h, run by adapters_test.py, which checks doctest's own
// output: which cases fail, with which message, and the exit status.
#include <fencedep/doctest.h>

#include <future>
#include <thread>

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

// A splat that a thread of the case makes after doctest settled the case's verdict, before the
// case ends: doctest shows its failure under the case but does not count it, so the adapter
// writes it to the log, and the exit status is 66. Skipped unless asked for (--no-skip): the exit
// status of a whole run would be 66 instead of 1.
namespace {
std::promise<void> verdict_given;
std::thread late_thread;
}  // namespace

TEST_CASE("a splat after the verdict" * doctest::skip()) {
    late_thread = std::thread([] {
        verdict_given.get_future().wait();
        abba(a, b);
    });
}

// doctest calls the listeners in the reverse order of their priorities: this one hears
// test_case_end after the verdict and before fencedep's listener, and lets the thread go.
struct verdict_listener : fencedep::test_adapter::doctest_detail::quiet_listener {
    explicit verdict_listener(const doctest::ContextOptions&) {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {
        if (!late_thread.joinable())
            return;
        verdict_given.set_value();
        late_thread.join();
    }
};
DOCTEST_REGISTER_LISTENER("verdict", 1, verdict_listener);
