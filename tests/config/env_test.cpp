// SPDX-License-Identifier: MIT
// FENCEDEP and FENCEDEP_OPTIONS as users meet them: the probe program run in child processes.
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "spawn.h"

using fencedep::testing::describe;
using fencedep::testing::read_file;
using fencedep::testing::spawn_result;
using fencedep::testing::temp_dir;

namespace {

const std::string reached = "probe: main reached\n";
const std::string finished = reached + "probe: done\n";
const std::string splat_title = "WARNING: possible circular locking dependency detected";

// Runs the probe with exactly these two variables (nullopt: unset), whatever the environment of
// the test run holds.
spawn_result run_probe(std::optional<std::string> fencedep, std::optional<std::string> options,
                       const char* mode = nullptr) {
    std::vector<std::string> argv = {PROBE_PATH};
    if (mode)
        argv.emplace_back(mode);
    const spawn_result result = fencedep::testing::spawn(
        argv, {{"FENCEDEP", std::move(fencedep)}, {"FENCEDEP_OPTIONS", std::move(options)}});
    REQUIRE_FALSE(result.timed_out);
    return result;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The frame lines of a splat's closing "stack backtrace:" section.
std::vector<std::string> backtrace_lines(const std::string& splat) {
    const std::string heading = "stack backtrace:\n";
    std::vector<std::string> lines;
    const std::size_t start = splat.find(heading);
    if (start == std::string::npos)
        return lines;
    std::istringstream section(splat.substr(start + heading.size()));
    for (std::string line; std::getline(section, line) && !line.empty();)
        lines.push_back(line);
    return lines;
}

// "/path/of/module+0x1a2b", as the sanitizers print an unsymbolized frame.
bool is_module_offset(const std::string& line) {
    const std::size_t start = line.find_first_not_of(' ');
    const std::size_t offset = line.rfind("+0x");
    return start != std::string::npos && line[start] == '/' && offset != std::string::npos &&
           line.size() > offset + 3 &&
           line.find_first_not_of("0123456789abcdef", offset + 3) == std::string::npos;
}

}  // namespace

TEST_SUITE("config") {

TEST_CASE("spawn collects stdout, stderr and the exit status") {
    const spawn_result result =
        fencedep::testing::spawn({"/bin/sh", "-c", "printf out; printf err >&2; exit 7"});
    CHECK(result.exit_code() == 7);
    CHECK(result.signal() == 0);
    CHECK(result.out == "out");
    CHECK(result.err == "err");
    CHECK(result.pid > 0);
}

TEST_CASE("spawn sets and removes environment variables") {
    ::setenv("FENCEDEP_SPAWN_TEST_KEPT", "kept", 1);
    ::setenv("FENCEDEP_SPAWN_TEST_REMOVED", "removed", 1);
    const spawn_result result = fencedep::testing::spawn(
        {"/bin/sh", "-c",
         "echo \"$FENCEDEP_SPAWN_TEST_KEPT $FENCEDEP_SPAWN_TEST_SET "
         "${FENCEDEP_SPAWN_TEST_REMOVED-unset}\""},
        {{"FENCEDEP_SPAWN_TEST_SET", "set"}, {"FENCEDEP_SPAWN_TEST_REMOVED", std::nullopt}});
    ::unsetenv("FENCEDEP_SPAWN_TEST_KEPT");
    ::unsetenv("FENCEDEP_SPAWN_TEST_REMOVED");
    CHECK(result.out == "kept set unset\n");
}

TEST_CASE("spawn drains stdout and stderr together") {
    // Far more than a pipe holds: reading one stream to its end first would never finish.
    const spawn_result result = fencedep::testing::spawn(
        {"/bin/sh", "-c", "head -c 300000 /dev/zero >&2; head -c 300000 /dev/zero"});
    CHECK_FALSE(result.timed_out);
    CHECK(result.err.size() == 300000);
    CHECK(result.out.size() == 300000);
}

TEST_CASE("spawn reports the signal that ended the program") {
    const spawn_result result = fencedep::testing::spawn({"/bin/sh", "-c", "kill -ABRT $$"});
    CHECK(result.signal() == SIGABRT);
    CHECK(result.exit_code() == -1);
}

TEST_CASE("spawn kills a program that outlives the timeout") {
    const spawn_result result = fencedep::testing::spawn({"/bin/sh", "-c", "exec sleep 10"}, {},
                                                         std::chrono::milliseconds(200));
    CHECK(result.timed_out);
    CHECK(result.signal() == SIGKILL);
}

TEST_CASE("spawn throws when the program cannot be run") {
    CHECK_THROWS_AS(fencedep::testing::spawn({"/nonexistent/fencedep-probe"}), std::runtime_error);
}

TEST_CASE("FENCEDEP unset: the probe runs silently") {
    const spawn_result result = run_probe(std::nullopt, std::nullopt);
    INFO(describe(result));
    CHECK(result.exit_code() == 0);
    CHECK(result.out == finished);
    CHECK(result.err == "");
}

TEST_CASE("FENCEDEP=1 with no lock problem: no output, status 0") {
    const spawn_result result = run_probe("1", std::nullopt);
    INFO(describe(result));
    CHECK(result.exit_code() == 0);
    CHECK(result.out == finished);
    CHECK(result.err == "");
}

TEST_CASE("a malformed value stops the process with status 2 before main") {
    const std::string error = "fencedep: error: FENCEDEP_OPTIONS: invalid value 'abc' for "
                              "'exitcode': expected an integer from 0 to 255\n";
    SUBCASE("with fencedep on") {
        const spawn_result result = run_probe("1", "exitcode=abc");
        INFO(describe(result));
        CHECK(result.exit_code() == 2);
        CHECK(result.err == error);
        CHECK(result.out == "");
    }
    SUBCASE("with fencedep off, so that the typo does not wait for the day it is turned on") {
        const spawn_result result = run_probe(std::nullopt, "stack_depth=8:exitcode=abc");
        INFO(describe(result));
        CHECK(result.exit_code() == 2);
        CHECK(result.err == error);
        CHECK(result.out == "");
    }
}

TEST_CASE("a segment without '=' stops the process with status 2 before main") {
    const spawn_result result = run_probe("1", "exitcode=3:foo");
    INFO(describe(result));
    CHECK(result.exit_code() == 2);
    CHECK(result.err == "fencedep: error: FENCEDEP_OPTIONS: 'foo' is not of the form key=value\n");
    CHECK(result.out == "");
}

TEST_CASE("a bad FENCEDEP value stops the process with status 2 before main") {
    const spawn_result result = run_probe("yes", std::nullopt);
    INFO(describe(result));
    CHECK(result.exit_code() == 2);
    CHECK(result.err == "fencedep: error: FENCEDEP='yes': expected 0 or 1\n");
    CHECK(result.out == "");
}

TEST_CASE("an unknown key is a warning and main still runs") {
    const spawn_result result = run_probe("1", "stak_depth=8");
    INFO(describe(result));
    CHECK(result.exit_code() == 0);
    CHECK(result.out == finished);
    CHECK(result.err ==
          "fencedep: warning: unknown option 'stak_depth' in FENCEDEP_OPTIONS; known options: "
          "log_path, log_format, sarif_path, abort_on_splat, exitcode, stack_depth, symbolize, "
          "max_classes, max_edges, max_chains, max_lock_depth, container_rules, enable_signaling, "
          "preload_classes, graph_path, suppressions, print_suppressions "
          "(did you mean 'stack_depth'?)\n");
}

TEST_CASE("an ABBA splat sets the exit status") {
    SUBCASE("66 by default") {
        const spawn_result result = run_probe("1", std::nullopt, "abba");
        INFO(describe(result));
        CHECK(result.exit_code() == 66);
        CHECK(contains(result.err, splat_title));
        CHECK(result.out == finished);
    }
    SUBCASE("exitcode=3") {
        const spawn_result result = run_probe("1", "exitcode=3", "abba");
        INFO(describe(result));
        CHECK(result.exit_code() == 3);
        CHECK(contains(result.err, splat_title));
    }
    SUBCASE("exitcode=0 leaves the status alone and still prints the splat") {
        const spawn_result result = run_probe("1", "exitcode=0", "abba");
        INFO(describe(result));
        CHECK(result.exit_code() == 0);
        CHECK(contains(result.err, splat_title));
        CHECK(result.out == finished);
    }
}

TEST_CASE("abort_on_splat=1 ends the process with SIGABRT at the first splat") {
    const spawn_result result = run_probe("1", "abort_on_splat=1", "abba");
    INFO(describe(result));
    CHECK(result.signal() == SIGABRT);
    CHECK(contains(result.err, splat_title));
    CHECK(result.out == reached);
}

TEST_CASE("FENCEDEP=0 or unset: the ABBA goes unreported") {
    for (const std::optional<std::string>& fencedep : {std::optional<std::string>("0"),
                                                       std::optional<std::string>()}) {
        INFO("FENCEDEP=", fencedep.value_or("(unset)"));
        const spawn_result result = run_probe(fencedep, "exitcode=3", "abba");
        INFO(describe(result));
        CHECK(result.exit_code() == 0);
        CHECK(result.out == finished);
        CHECK(result.err == "");
    }
}

TEST_CASE("symbolize chooses between function names and raw addresses in the stacks") {
    SUBCASE("symbolize=1 names the probe's functions") {
        const spawn_result result = run_probe("1", "symbolize=1", "abba");
        INFO(describe(result));
        CHECK(result.exit_code() == 66);
        const std::vector<std::string> frames = backtrace_lines(result.err);
        REQUIRE_FALSE(frames.empty());
        CHECK(contains(frames.front(), "probe_lock_b_then_a"));
        CHECK(contains(result.err, "main+"));
    }
    SUBCASE("symbolize=0 prints modules and offsets alone") {
        const spawn_result result = run_probe("1", "symbolize=0", "abba");
        INFO(describe(result));
        CHECK(result.exit_code() == 66);
        CHECK(contains(result.err, splat_title));
        const std::vector<std::string> frames = backtrace_lines(result.err);
        REQUIRE_FALSE(frames.empty());
        for (const std::string& frame : frames) {
            INFO("frame: ", frame);
            CHECK(is_module_offset(frame));
            // fencedep's own frames are trimmed by address range, without names.
            CHECK_FALSE(contains(frame, "libfencedep.so"));
            CHECK_FALSE(contains(frame, "libgcc_s"));
        }
        CHECK_FALSE(contains(result.err, "probe_lock_"));
        CHECK_FALSE(contains(result.err, "main+"));
    }
}

TEST_CASE("stack_depth bounds every printed stack, counted from the user's first frame") {
    const spawn_result result = run_probe("1", "stack_depth=1", "abba");
    INFO(describe(result));
    CHECK(result.exit_code() == 66);
    const std::vector<std::string> frames = backtrace_lines(result.err);
    REQUIRE(frames.size() == 1);
    CHECK(contains(frames.front(), "probe_lock_b_then_a"));
    CHECK_FALSE(contains(result.err, "main+"));
}

TEST_CASE("options separated by ',' as sanitizer users write them, and a quoted log_path") {
    const temp_dir dir;
    const std::string log_file = (dir.path / "fd,1 log").string();
    const std::string log_option = "log_path='" + log_file + "',exitcode=3 symbolize=0";

    const spawn_result result = run_probe("1", log_option, "abba");

    INFO(describe(result));
    const std::string log = read_file(log_file);
    CHECK(result.exit_code() == 3);
    CHECK(result.out == finished);
    CHECK(result.err == "");
    CHECK(contains(log, splat_title));
    CHECK_FALSE(contains(log, "probe_lock_"));
}

TEST_CASE("an option error with a control character stays on one line") {
    const spawn_result result = run_probe("1", "exitcode='4\n2'", "abba");
    INFO(describe(result));
    CHECK(result.exit_code() == 2);
    CHECK(result.err == "fencedep: error: FENCEDEP_OPTIONS: invalid value '4\\n2' for 'exitcode': expected an "
                        "integer from 0 to 255\n");
    CHECK(result.out == "");
}

TEST_CASE("log_path sends the report to a file named with the pid") {
    const temp_dir dir;
    const std::string log_option = "log_path=" + (dir.path / "fd.%p").string();

    const spawn_result result = run_probe("1", log_option, "abba");

    INFO(describe(result));
    const std::string log = read_file(dir.path / ("fd." + std::to_string(result.pid)));
    CHECK(result.exit_code() == 66);
    CHECK(result.out == finished);
    CHECK(result.err == "");
    CHECK(contains(log, splat_title));
}

}  // TEST_SUITE
