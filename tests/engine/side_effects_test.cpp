// SPDX-License-Identifier: MIT
// fencedep leaves no trace the program can see: no descriptor kept open, no thread, no signal
// handler, and errno as the program left it, after any call, including the slow paths that
// capture stacks, symbolize, render and write reports.
#include <cerrno>
#include <map>
#include <sstream>
#include <string>

#include <doctest/doctest.h>
#include <fencedep/fencedep.h>

#include "../config/spawn.h"
#include "capture.h"

using engine_test::capture;
using engine_test::contains;

namespace {

struct errno_fence final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "errno"; }
    const char* timeline_name() const noexcept override { return "errno"; }
};

// Matches side_effects_probe's: no call sets errno to it.
constexpr int sentinel = 4242;

// The probe's "label: value" lines, by label.
std::map<std::string, std::string> probe_lines(const std::string& out) {
    std::map<std::string, std::string> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        const auto colon = line.find(": ");
        if (colon != std::string::npos)
            lines[line.substr(0, colon)] = line.substr(colon + 2);
    }
    return lines;
}

std::size_t count_of(std::string_view text, std::string_view needle) {
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1))
        ++count;
    return count;
}

// Runs `step` with errno set to the sentinel; returns the errno it left.
template <class Step>
int errno_after(Step step) {
    errno = sentinel;
    step();
    return errno;
}

}  // namespace

TEST_SUITE("side effects") {

TEST_CASE("a fresh process: descriptors, threads, signal handlers and errno through two printed splats") {
    const auto run = fencedep::testing::spawn({SIDE_EFFECTS_PROBE_PATH},
                                              {{"FENCEDEP", "1"}, {"FENCEDEP_OPTIONS", std::nullopt}});
    INFO(fencedep::testing::describe(run));
    REQUIRE(run.exit_code() == 66);
    auto lines = probe_lines(run.out);

    // Both splats went through the default sink, symbolized down to the probe's own lines.
    CHECK(count_of(run.err, "WARNING: possible circular locking dependency detected") == 2);
    CHECK(count_of(run.err, "side_effects_lock_b_then_a") >= 2);
    CHECK(contains(run.err, "side_effects_probe.cpp:"));

    // The same descriptors, to the same files, as before the first lock.
    const std::string before = lines["descriptors before"];
    REQUIRE(!before.empty());
    CHECK(lines["descriptors after the first capture"] == before);
    CHECK(lines["descriptors after the first splat"] == before);
    CHECK(lines["descriptors after the second splat"] == before);

    CHECK(lines["errno at main"] == "0");
    CHECK(lines["threads before"] == "1");
    CHECK(lines["threads after"] == "1");
    CHECK(lines["signal handlers"] == "unchanged");

    const std::string sentinel_text = std::to_string(sentinel);
    for (const char* step : {"first lock", "first new edge", "first unlock", "first splat", "second lock",
                             "second new edge", "second unlock", "second splat"}) {
        INFO(step);
        CHECK(lines[std::string("errno ") + step] == sentinel_text);
    }
}

TEST_CASE("with log_path, the log is the one descriptor fencedep keeps, from start-up on") {
    const fencedep::testing::temp_dir dir;
    const std::string log = (dir.path / "fencedep.log").string();
    const auto run = fencedep::testing::spawn({SIDE_EFFECTS_PROBE_PATH},
                                              {{"FENCEDEP", "1"}, {"FENCEDEP_OPTIONS", "log_path=" + log}});
    INFO(fencedep::testing::describe(run));
    REQUIRE(run.exit_code() == 66);
    CHECK(run.err.empty());
    CHECK(count_of(fencedep::testing::read_file(log), "WARNING: possible circular locking dependency detected") == 2);
    auto lines = probe_lines(run.out);
    const std::string before = lines["descriptors before"];
    CHECK(count_of(before, "=" + log) == 1);
    CHECK(lines["descriptors after the first capture"] == before);
    CHECK(lines["descriptors after the first splat"] == before);
    CHECK(lines["descriptors after the second splat"] == before);
}

TEST_CASE("errno is left alone by every entry point, on its slow paths and through reports") {
    capture reports;
    fencedep::mutex a{"errno_a"};
    fencedep::mutex b{"errno_b"};
    fencedep::spinlock s{"errno_s"};

    CHECK(errno_after([&] { a.lock(); }) == sentinel);
    CHECK(errno_after([&] { b.lock(); }) == sentinel);  // a new edge: a stack capture
    CHECK(errno_after([&] { b.unlock(); }) == sentinel);
    CHECK(errno_after([&] { CHECK(s.try_lock()); }) == sentinel);
    CHECK(errno_after([&] { s.unlock(); }) == sentinel);
    CHECK(errno_after([&] { a.unlock(); }) == sentinel);
    REQUIRE(reports.count() == 0);

    b.lock();
    CHECK(errno_after([&] { a.lock(); }) == sentinel);  // the splat: symbolized and rendered
    a.unlock();
    b.unlock();
    REQUIRE(reports.count() == 1);
    CHECK(reports.at(0).kind == fencedep::report_kind::circular_dependency);

    fencedep::lock_map never_taken{"errno_never_taken"};
    CHECK(errno_after([&] { never_taken.release(); }) == sentinel);
    REQUIRE(reports.count() == 2);
    CHECK(reports.at(1).kind == fencedep::report_kind::bad_unlock_balance);

    const fencedep::context_frame frame{fencedep::fence_op::signal, "fence", "errno", "errno", 1, 1};
    CHECK(errno_after([&] {
              const fencedep::context_scope scope(frame);
              a.lock();
              a.unlock();
          }) == sentinel);

    // A fence's operations, each under a context frame of the fence layer's.
    fencedep::fence_ref<> f;
    CHECK(errno_after([&] { f = fencedep::make_fence<errno_fence>(fencedep::fence::allocate_contexts(1), 1); }) ==
          sentinel);
    CHECK(errno_after([&] { CHECK_FALSE(f->is_signaled()); }) == sentinel);
    CHECK(errno_after([&] { f->signal(); }) == sentinel);
    CHECK(errno_after([&] { f->wait(); }) == sentinel);
    CHECK(errno_after([&] { f = {}; }) == sentinel);
    CHECK(reports.count() == 2);

    CHECK(errno_after([] { fencedep::reset(); }) == sentinel);
    CHECK(errno_after([] { fencedep::enable(false); }) == sentinel);
    CHECK(errno_after([] { fencedep::enable(true); }) == sentinel);
}

}  // TEST_SUITE
