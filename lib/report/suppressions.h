// SPDX-License-Identifier: MIT
// Suppressions: the rules of the file named by the suppressions option, and which reports they
// hold back from the log and the report handler.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fencedep/report.h>

namespace fencedep::detail {

// One line of a suppressions file: `TYPE:PATTERN`.
struct suppression_rule {
    report_kind kind{};
    std::string type;     // as written: "circular", "recursive", ...
    std::string pattern;  // the sanitizers' template: '*' any run, '^' and '$' anchors
    unsigned line = 0;    // 1-based line of the file
    // Reports this rule held back. A report is counted for the first rule (in file order) that
    // matches it.
    std::unique_ptr<std::atomic<std::uint64_t>> hits = std::make_unique<std::atomic<std::uint64_t>>(0);
};

struct suppressions_parse {
    std::vector<suppression_rule> rules;
    std::string error;  // non-empty: the file is malformed; one line naming the file and the line
};

// Parses a suppressions file's text. Pure: `file` only names the file in the error. Lines are
// trimmed of spaces, tabs and CR; empty lines and lines starting with '#' are skipped; every other
// line must be TYPE:PATTERN with a TYPE from the table in suppressions.cpp (the README lists it)
// and a non-empty PATTERN without control characters.
suppressions_parse parse_suppressions(std::string_view text, std::string_view file);

// The sanitizers' template match (sanitizer_common's TemplateMatch): `pattern` matches a
// substring of `text`, '*' matches any run of characters, a leading '^' anchors at the start of
// `text` and a trailing '$' at its end. Empty text never matches.
bool pattern_matches(std::string_view pattern, std::string_view text);

// Whether `rule` holds `r` back: its kind is the rule's and its pattern matches one of the
// report's class names or the function, file or module of a frame of one of its stacks.
bool suppresses(const suppression_rule& rule, const report& r);

// Reads and parses the file named by the suppressions option, if any; on a missing, unreadable or
// malformed file prints one line saying why and exits with status 2. Called once at start-up,
// before any report can be made.
void load_suppressions();

// If a loaded rule holds `r` back, counts it against that rule and returns it (the first in file
// order that matches), else nullptr. Rules live until the process exits. Reads rules that are
// fixed after start-up: takes no lock.
const suppression_rule* suppressed(const report& r);

// The path of the loaded suppressions file, as the suppressions option gave it.
const std::string& suppressions_file();

// The exit-time summary, "fencedep: N reports suppressed by M rules", then with print_suppressions
// the rules that matched and how often; empty when nothing was suppressed.
std::string suppressions_summary();

}  // namespace fencedep::detail
