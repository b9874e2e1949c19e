// SPDX-License-Identifier: MIT
// What the test-framework adapters (doctest.h, gtest.h) share: the per-case monitor of splats
// and the check behind FENCEDEP_CHECK_SPLAT / EXPECT_FENCEDEP_SPLAT. Header-only over
// the public API; a test binary includes an adapter, not this header.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <algorithm>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fencedep/lockdep.h>
#include <fencedep/report.h>

namespace fencedep::test_adapter {

// "a circular_dependency splat between a and b", "a recursive_locking splat on a".
inline std::string describe(report_kind kind, const std::vector<std::string>& classes) {
    std::string text = "a " + std::string(report_kind_name(kind)) + " splat";
    for (std::size_t i = 0; i < classes.size(); ++i)
        text += (i == 0 ? (classes.size() == 1 ? " on " : " between ") : i + 1 == classes.size() ? " and " : ", ") +
                classes[i];
    return text;
}

// A splat a test expects: its kind and its classes, in any order (which lock of a cycle comes
// first depends on which acquisition closed it).
struct expected_splat {
    report_kind kind;
    std::vector<std::string> classes;
};

// The failure message of a splat that no expectation claimed.
inline std::string unexpected_message(const report& r) {
    return "fencedep reported " + describe(r.kind, r.classes) + " during this test case:\n" + r.text;
}

// The framework's non-fatal failure of the running test case, at the case's own file and line,
// with the given message. The adapter calls it on whichever thread made the splat: both
// frameworks take failures from any thread of a running case (doctest's asserts are thread-safe
// unless DOCTEST_CONFIG_NO_MULTITHREADING, gtest's wherever it has pthreads).
using case_failure = std::function<void(const std::string& message)>;

// The splats of the running test case. Between begin() and end() it is the report handler: a
// splat fails the case at once, on the thread that made it, because that is the one moment a
// framework is sure to count it (doctest settles a case's verdict as soon as its body returns,
// with no hook in between). Inside an expectation (FENCEDEP_CHECK_SPLAT, EXPECT_FENCEDEP_SPLAT)
// splats are held instead, for the expectation to claim; the ones it does not claim fail the
// case when the outermost expectation closes. The state is kept under a std::mutex (never
// instrumented: fencedep ignores events from inside a handler), held while a failure is added,
// so that end() waits for a failure in progress. Reports that are not splats (warnings), and
// splats raised outside a case (static initialization, between cases, a thread that outlives
// its case), go where they would without the adapter: log_report() writes them to the log, and
// a splat there makes the exit status the exitcode option (66).
class case_monitor {
public:
    // Starts a case from a fresh validator state (reset(): the requirements of reset() apply),
    // whose splats `fail` reports, and makes this monitor the report handler until end(). Called
    // on the test's thread; takes the engine lock (reset) and the handler slot's lock
    // (set_report_handler), one after the other.
    void begin(case_failure fail) {
        fencedep::reset();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            open_ = true;
            fail_ = std::move(fail);
        }
        previous_ = set_report_handler([this](const report& r) { receive(r); });
    }

    // Ends the case: restores the handler that begin() replaced and returns the splats that
    // failed the case, in the order they were made, for a framework that must check that their
    // failures were counted. Called on the test's thread. A report whose handler call started
    // before the restore and ends after it finds the case closed and goes to the log, and so do
    // splats still held by an expectation that a thread which outlives the case left open.
    std::vector<report> end() {
        set_report_handler(std::exchange(previous_, {}));
        std::vector<report> held;
        std::vector<report> failed;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            open_ = false;
            expectations_ = 0;
            for (auto& s : held_)
                if (!s.claimed)
                    held.push_back(std::move(s.r));
            held_.clear();
            failed = std::exchange(failed_, {});
            fail_ = nullptr;
        }
        for (const report& r : held)
            log_report(r);
        return failed;
    }

    // Opens an expectation: splats are held from now on until the outermost one closes. Returns
    // where its own splats start, for claim().
    std::size_t open_expectation() {
        std::lock_guard<std::mutex> lock(mutex_);
        ++expectations_;
        return held_.size();
    }

    // Claims the first unclaimed splat held since `since` that matches `expected`. Returns
    // nothing if there is one, else the failure message, which names what was reported instead
    // (those splats stay unclaimed, so they fail the case too).
    std::optional<std::string> claim(const expected_splat& expected, std::size_t since) {
        std::vector<std::string> wanted = expected.classes;
        std::sort(wanted.begin(), wanted.end());
        std::string others;
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t i = since; i < held_.size(); ++i) {
            auto& s = held_[i];
            if (s.claimed)
                continue;
            std::vector<std::string> got = s.r.classes;
            std::sort(got.begin(), got.end());
            if (s.r.kind == expected.kind && got == wanted) {
                s.claimed = true;
                return std::nullopt;
            }
            others += (others.empty() ? "" : "; ") + describe(s.r.kind, s.r.classes);
        }
        std::string message = "expected " + describe(expected.kind, expected.classes) + "; ";
        if (!others.empty())
            return message + "got " + others;
        message += "none was reported";
        if (!enabled())
            message += " (fencedep is off: set FENCEDEP=1 or call fencedep::enable(true))";
        return message;
    }

    // Closes an expectation; the outermost one fails the case with every held splat that no
    // expectation claimed.
    void close_expectation() {
        std::lock_guard<std::mutex> lock(mutex_);
        // Zero: the case ended while a thread that outlived it had this expectation open.
        if (expectations_ == 0 || --expectations_ > 0)
            return;
        for (auto& s : held_)
            if (!s.claimed)
                fail(s.r);
        held_.clear();
    }

private:
    void receive(const report& r) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (open_ && r.is_splat) {
                if (expectations_ > 0)
                    held_.push_back({r, false});
                else
                    fail(r);
                return;
            }
        }
        log_report(r);
    }

    // Called with mutex_ held.
    void fail(const report& r) {
        failed_.push_back(r);
        // gtest's --gtest_throw_on_failure throws once the failure is recorded: the exception must
        // travel neither into fencedep's delivery nor out of an expectation's destructor.
        try {
            fail_(unexpected_message(r));
        } catch (...) {
        }
    }

    struct held_splat {
        report r;
        bool claimed;
    };
    std::mutex mutex_;
    bool open_ = false;
    case_failure fail_;
    int expectations_ = 0;
    std::vector<held_splat> held_;
    std::vector<report> failed_;
    report_handler previous_;  // only touched by the test's thread, in begin() and end()
};

// The one monitor of the process. Never destroyed: a thread may report while the process exits.
inline case_monitor& monitor() {
    static case_monitor* m = new case_monitor;
    return *m;
}

// An open expectation of the monitor, closed when it goes out of scope.
class expectation {
public:
    expectation() : since_(monitor().open_expectation()) {}
    expectation(const expectation&) = delete;
    expectation& operator=(const expectation&) = delete;
    ~expectation() { monitor().close_expectation(); }

    std::optional<std::string> claim(const expected_splat& expected) const { return monitor().claim(expected, since_); }

private:
    std::size_t since_;
};

}  // namespace fencedep::test_adapter

// The body of FENCEDEP_CHECK_SPLAT and EXPECT_FENCEDEP_SPLAT; FAIL is the framework's non-fatal
// failure, given the message. The expectation closes after FAIL, so that the check's own failure
// comes before those of the splats it did not claim, and also when `code` ends by an exception
// (doctest's REQUIRE) or a return (gtest's ASSERT_*), whose held splats would otherwise be lost.
#define FENCEDEP_DETAIL_CHECK_SPLAT(FAIL, kind, classes, ...)                                               \
    do {                                                                                                    \
        const ::fencedep::test_adapter::expectation fencedep_expectation_;                                  \
        __VA_ARGS__                                                                                         \
        if (const auto fencedep_failure_ =                                                                  \
                fencedep_expectation_.claim({kind, ::std::vector<::std::string> classes}))                  \
            FAIL(*fencedep_failure_);                                                                       \
    } while (false)

#endif  // FENCEDEP_CXX20
