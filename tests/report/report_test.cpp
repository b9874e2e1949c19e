// SPDX-License-Identifier: MIT
// The report sink as a program meets it: exit status after every exit-time handler, throwing
// report handlers, whole reports on a slow pipe, a log file that refuses writes, escaped names.
// Each case runs a probe program in a child process.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "probe_run.h"

using fencedep::testing::describe;
using fencedep::testing::read_file;
using fencedep::testing::spawn_result;
using fencedep::testing::temp_dir;
using namespace report_test;

namespace {

// The rendered splat of the "abba" probe mode without its leading blank line: what follows an
// error line on stderr.
const std::string splat_start = "\n" + std::string(splat_title.size(), '=') + "\n" + splat_title + "\n";

}  // namespace

TEST_SUITE("report") {

TEST_CASE("the exit status is applied after the program's static destructors") {
    temp_dir dir;
    const std::filesystem::path file = dir.path / "witness";
    SUBCASE("validation switched on by FENCEDEP=1") {
        const spawn_result result = run(PROBE_PATH, {"exit-file", file});
        INFO(describe(result));
        CHECK(result.exit_code() == 66);
        CHECK(contains(result.err, splat_title));
        CHECK(read_file(file) == "main ran\ndestructor ran\n");
    }
    SUBCASE("validation switched on by the program, after its globals were constructed") {
        run_options off;
        off.fencedep = std::nullopt;
        const spawn_result result = run(PROBE_PATH, {"exit-file", file, "enable"}, off);
        INFO(describe(result));
        CHECK(result.exit_code() == 66);
        CHECK(contains(result.err, splat_title));
        CHECK(read_file(file) == "main ran\ndestructor ran\n");
    }
    SUBCASE("exitcode=0 leaves the status alone") {
        const spawn_result result = run(PROBE_PATH, {"exit-file", file}, with_options("exitcode=0"));
        INFO(describe(result));
        CHECK(result.exit_code() == 0);
        CHECK(read_file(file) == "main ran\ndestructor ran\n");
    }
}

TEST_CASE("a --coverage build writes its coverage data and still exits with the exitcode") {
    temp_dir dir;
    // The data files go under GCOV_PREFIX (gcc and clang both honour it), away from the build's.
    run_options how;
    how.gcov_prefix = (dir.path / "gcov").string();
    std::vector<std::string> args = {"exit-file", dir.path / "witness"};
    SUBCASE("validation switched on by FENCEDEP=1") {}
    SUBCASE("validation switched on by the program") {
        how.fencedep = std::nullopt;
        args.push_back("enable");
    }
    const spawn_result result = run(COVERAGE_PROBE_PATH, args, how);
    INFO(describe(result));
    CHECK(result.exit_code() == 66);
    CHECK(contains(result.err, splat_title));
    CHECK(result.out == "probe: done\n");
    CHECK(read_file(dir.path / "witness") == "main ran\ndestructor ran\n");
    std::vector<std::string> data;
    if (std::filesystem::exists(how.gcov_prefix.value()))
        for (const auto& entry : std::filesystem::recursive_directory_iterator(how.gcov_prefix.value()))
            if (entry.path().extension() == ".gcda" && entry.file_size() > 0)
                data.push_back(entry.path().filename());
    CHECK(data == std::vector<std::string>{"probe.cpp.gcda"});
}

TEST_CASE("a throwing report handler: the exception is named on the log, then the report follows") {
    SUBCASE("a std::exception: its what(), escaped") {
        const spawn_result result = run(PROBE_PATH, {"throw-std"});
        INFO(describe(result));
        CHECK(result.exit_code() == 66);
        CHECK(result.out == "probe: done\n");
        const std::string note =
            "fencedep: error: the report handler threw (FAIL: lock order\\n(from the test)); the report follows\n";
        // Every throw gets its line, each in front of the report it concerns.
        CHECK(count(result.err, note + splat_start) == 2);
        CHECK(count(result.err, splat_title) == 2);
        CHECK(result.err.starts_with(note));
    }
    SUBCASE("anything else") {
        const spawn_result result = run(PROBE_PATH, {"throw-other"});
        INFO(describe(result));
        CHECK(result.exit_code() == 66);
        CHECK(result.out == "probe: done\n");
        const std::string note = "fencedep: error: the report handler threw an exception that is not a "
                                 "std::exception; the report follows\n";
        CHECK(count(result.err, note + splat_start) == 2);
        CHECK(count(result.err, splat_title) == 2);
    }
}

TEST_CASE("log_report: a handler passes a report on to the log, where it counts for the exit status") {
    const spawn_result result = run(PROBE_PATH, {"pass-on"});
    INFO(describe(result));
    CHECK(result.exit_code() == 66);
    // Counted once, when it was made, however it was written.
    CHECK(result.out == "probe: 2 splats\nprobe: done\n");
    CHECK(count(result.err, splat_title) == 1);
    CHECK(contains(result.err, "-> #1 (pass_b){write}:\n"));
    CHECK_FALSE(contains(result.err, "keep_"));
}

TEST_CASE("reports from concurrent threads reach a slow pipe whole") {
    constexpr int threads = 6;
    // Without symbolization the reports are rendered fast, so they meet at the pipe.
    run_options slow_reader = with_options("symbolize=0");
    slow_reader.read_pause = std::chrono::milliseconds(2);
    const spawn_result result = run(PROBE_PATH, {"concurrent", std::to_string(threads)}, slow_reader);
    INFO("status ", result.status, ", stderr bytes ", result.err.size());
    CHECK(result.exit_code() == 66);
    CHECK(result.out == "probe: done\n");

    // Split stderr at each report's first line; each piece must be one thread's report, whole.
    std::vector<std::string> reports;
    for (std::size_t at = result.err.find(splat_start); at != std::string::npos;) {
        const std::size_t next = result.err.find(splat_start, at + 1);
        reports.push_back(result.err.substr(at, next - at));
        at = next;
    }
    REQUIRE(reports.size() == threads);
    CHECK(result.err.starts_with(splat_start));
    std::set<int> seen;
    std::optional<std::size_t> tags_per_report;
    for (const std::string& report : reports) {
        std::vector<int> owners;
        for (int t = 0; t < threads; ++t)
            if (contains(report, "<thread" + std::to_string(t) + ">"))
                owners.push_back(t);
        REQUIRE(owners.size() == 1);
        const int owner = owners.front();
        seen.insert(owner);
        INFO("report of thread ", owner, ", ", report.size(), " bytes");
        CHECK(report.size() > 8192);
        CHECK(report.ends_with("\n"));
        CHECK(contains(report, "stack backtrace:\n"));
        // Same layout for every thread, so the same count of tags: a piece cut out of a report
        // shows up as a short count.
        const std::size_t tags = count(report, "<thread" + std::to_string(owner) + ">");
        if (!tags_per_report)
            tags_per_report = tags;
        CHECK(tags == *tags_per_report);
    }
    CHECK(seen.size() == threads);
}

TEST_CASE("a log file that refuses writes: one error line, then the reports go to stderr") {
    const spawn_result result = run(PROBE_PATH, {"abba", "2"}, with_options("log_path=/dev/full"));
    INFO(describe(result));
    CHECK(result.exit_code() == 66);
    CHECK(result.out == "probe: done\n");
    const std::string error =
        "fencedep: error: cannot write to log_path '/dev/full': No space left on device; reporting to stderr\n";
    CHECK(result.err.starts_with(error + splat_start));
    CHECK(count(result.err, error) == 1);
    CHECK(count(result.err, splat_title) == 2);
    CHECK(contains(result.err, "(abba_a0){write}"));
    CHECK(contains(result.err, "(abba_a1){write}"));
}

TEST_CASE("control characters in lock and thread names are escaped in the report") {
    const spawn_result result = run(PROBE_PATH, {"names"});
    INFO(describe(result));
    CHECK(result.exit_code() == 66);
    CHECK(contains(result.err, splat_title));
    CHECK(contains(result.err, "(line\\nbreak){write}"));
    CHECK(contains(result.err, "(tab\\there\\x01\\\\){write}"));
    CHECK(contains(result.err, "lock(line\\nbreak);"));
    CHECK(contains(result.err, "probe\\tthread/"));
    // No raw control character is left; only the layout's own line ends.
    const bool control = std::any_of(result.err.begin(), result.err.end(), [](char c) {
        return c != '\n' && (static_cast<unsigned char>(c) < 0x20 || c == 0x7f);
    });
    CHECK_FALSE(control);
    CHECK_FALSE(contains(result.err, "\nbreak"));
}

}  // TEST_SUITE
