// SPDX-License-Identifier: MIT
// Shared by the report suites: runs the report probe in a child process with exactly the
// variables given, and counts what its output holds.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "spawn.h"

namespace report_test {

using fencedep::testing::spawn_result;

inline const std::string splat_title = "WARNING: possible circular locking dependency detected";

struct run_options {
    std::optional<std::string> fencedep = "1";
    std::optional<std::string> options;
    std::optional<std::string> gcov_prefix;
    std::chrono::milliseconds read_pause{0};
};

// Runs `probe` with these variables exactly (nullopt: unset), whatever the environment of the test
// run holds; a coverage run of the suite must not redirect the probe's data, for instance.
inline spawn_result run(const char* probe, std::vector<std::string> args, const run_options& how = run_options()) {
    args.insert(args.begin(), probe);
    const spawn_result result = fencedep::testing::spawn(
        args,
        {{"FENCEDEP", how.fencedep}, {"FENCEDEP_OPTIONS", how.options}, {"GCOV_PREFIX", how.gcov_prefix}},
        std::chrono::seconds(60), how.read_pause);
    REQUIRE_FALSE(result.timed_out);
    return result;
}

inline run_options with_options(std::string options) {
    run_options how;
    how.options = std::move(options);
    return how;
}

inline std::size_t count(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size()))
        ++n;
    return n;
}

inline bool contains(const std::string& text, const std::string& part) { return count(text, part) > 0; }

}  // namespace report_test
