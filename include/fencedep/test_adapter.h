// SPDX-License-Identifier: MIT
// What the test-framework adapters (doctest.h, gtest.h) share: the per-case collection of
// reports and the check behind FENCEDEP_CHECK_SPLAT / EXPECT_FENCEDEP_SPLAT. Header-only over
// the public API; a test binary includes an adapter, not this header.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <algorithm>
#include <cstddef>
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

// Collects the splats of the running test case. Between begin() and end() it is the report
// handler: the handler may run on any thread that takes a lock, so the reports are kept under a
// std::mutex (never instrumented: fencedep ignores events from inside a handler) and the case is
// failed afterwards from the test's own thread. Reports that are not splats (warnings), and
// splats raised outside a case (static initialization, between cases, a thread that outlives its
// case), go where they would without the adapter: log_report() writes them to the log, and a
// splat there makes the exit status the exitcode option (66).
class case_monitor {
public:
    // Starts a case from a fresh validator state (reset(): the requirements of reset() apply) and
    // makes this monitor the report handler until end(). Called on the test's thread; takes the
    // engine lock (reset) and the handler slot's lock (set_report_handler), one after the other.
    void begin() {
        fencedep::reset();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            open_ = true;
            splats_.clear();
        }
        previous_ = set_report_handler([this](const report& r) { receive(r); });
    }

    // Ends the case: restores the handler that begin() replaced and returns the splats that no
    // expectation claimed, in the order they were made. Called on the test's thread. A report
    // whose handler call started before the restore and ends after it finds the case closed and
    // goes to the log.
    std::vector<report> end() {
        set_report_handler(std::exchange(previous_, {}));
        std::lock_guard<std::mutex> lock(mutex_);
        open_ = false;
        std::vector<report> unclaimed;
        for (auto& s : splats_)
            if (!s.claimed)
                unclaimed.push_back(std::move(s.r));
        splats_.clear();
        return unclaimed;
    }

    // Where an expectation starts: splats made from now on are the ones it may claim.
    std::size_t mark() {
        std::lock_guard<std::mutex> lock(mutex_);
        return splats_.size();
    }

    // Claims the first unclaimed splat made since `since` that matches `expected`. Returns
    // nothing if there is one, else the failure message, which names what was reported instead
    // (those splats stay unclaimed, so they fail the case too).
    std::optional<std::string> claim(const expected_splat& expected, std::size_t since) {
        std::vector<std::string> wanted = expected.classes;
        std::sort(wanted.begin(), wanted.end());
        std::string others;
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t i = since; i < splats_.size(); ++i) {
            auto& s = splats_[i];
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

private:
    void receive(const report& r) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (open_ && r.is_splat) {
                splats_.push_back({r, false});
                return;
            }
        }
        log_report(r);
    }

    struct splat {
        report r;
        bool claimed;
    };
    std::mutex mutex_;
    bool open_ = false;
    std::vector<splat> splats_;
    report_handler previous_;  // only touched by the test's thread, in begin() and end()
};

// The one monitor of the process. Never destroyed: a thread may report while the process exits.
inline case_monitor& monitor() {
    static case_monitor* m = new case_monitor;
    return *m;
}

}  // namespace fencedep::test_adapter

// The body of FENCEDEP_CHECK_SPLAT and EXPECT_FENCEDEP_SPLAT; FAIL is the framework's non-fatal
// failure, given the message.
#define FENCEDEP_DETAIL_CHECK_SPLAT(FAIL, kind, classes, ...)                                               \
    do {                                                                                                    \
        const std::size_t fencedep_since_ = ::fencedep::test_adapter::monitor().mark();                     \
        __VA_ARGS__                                                                                         \
        if (const auto fencedep_failure_ = ::fencedep::test_adapter::monitor().claim(                       \
                {kind, ::std::vector<::std::string> classes}, fencedep_since_))                             \
            FAIL(*fencedep_failure_);                                                                       \
    } while (false)

#endif  // FENCEDEP_CXX20
