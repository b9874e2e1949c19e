// SPDX-License-Identifier: MIT
// The suppressions parser and matcher, in-process: the rules a file gives, every error it can
// give, the sanitizers' template match, which report fields a rule reads, and a seeded fuzz run
// over random and mutated files.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "report/suppressions.h"

using fencedep::report;
using fencedep::report_kind;
using fencedep::detail::parse_suppressions;
using fencedep::detail::pattern_matches;
using fencedep::detail::suppresses;

namespace {

const std::string types = "circular, recursive, unlock, freed, thread_exit, container, nest_lock";

std::string error_of(std::string_view text) { return parse_suppressions(text, "my.supp").error; }

// The 1-based line number an error names, or 0 if it names none in the expected form.
unsigned error_line(const std::string& error, std::string_view file) {
    const std::string prefix = "fencedep: error: suppressions file '" + std::string(file) + "', line ";
    if (!error.starts_with(prefix))
        return 0;
    unsigned line = 0;
    for (std::size_t i = prefix.size(); i < error.size() && error[i] >= '0' && error[i] <= '9'; ++i)
        line = line * 10 + static_cast<unsigned>(error[i] - '0');
    return line;
}

unsigned line_count(std::string_view text) {
    unsigned lines = 1;
    for (char c : text)
        lines += c == '\n';
    return lines;
}

// The text's lines before line `line` (1-based).
std::string_view lines_before(std::string_view text, unsigned line) {
    std::size_t end = 0;
    for (unsigned i = 1; i < line; ++i)
        end = text.find('\n', end) + 1;
    return text.substr(0, end);
}

}  // namespace

TEST_SUITE("report") {

TEST_CASE("a suppressions file gives one rule per TYPE:PATTERN line, with its line number") {
    const auto parsed = parse_suppressions("# comment\n"
                                           "circular:fence_array->lock\n"
                                           "\r\n"
                                           "  \t# indented comment\n"
                                           "  recursive : *driver_a*  \r\n"
                                           "unlock:a:b\n"
                                           "freed:x\nthread_exit:x\ncontainer:x\nnest_lock:x",
                                           "my.supp");
    REQUIRE(parsed.error.empty());
    REQUIRE(parsed.rules.size() == 7);
    CHECK(parsed.rules[0].kind == report_kind::circular_dependency);
    CHECK(parsed.rules[0].type == "circular");
    CHECK(parsed.rules[0].pattern == "fence_array->lock");
    CHECK(parsed.rules[0].line == 2);
    CHECK(parsed.rules[1].kind == report_kind::recursive_locking);
    CHECK(parsed.rules[1].pattern == "*driver_a*");
    CHECK(parsed.rules[1].line == 5);
    // Only the first ':' separates: a C++ name keeps its own.
    CHECK(parsed.rules[2].kind == report_kind::bad_unlock_balance);
    CHECK(parsed.rules[2].pattern == "a:b");
    CHECK(parsed.rules[3].kind == report_kind::held_lock_freed);
    CHECK(parsed.rules[4].kind == report_kind::lock_held_at_thread_exit);
    CHECK(parsed.rules[5].kind == report_kind::fence_container_nesting);
    CHECK(parsed.rules[6].kind == report_kind::nest_lock_not_held);
    CHECK(parsed.rules[6].line == 10);
    CHECK(parse_suppressions("", "my.supp").rules.empty());
    CHECK(parse_suppressions("", "my.supp").error.empty());
}

TEST_CASE("every malformed line is named with its file, its line and what is accepted") {
    const std::string at = "fencedep: error: suppressions file 'my.supp', line ";
    CHECK(error_of("circular:x\nbogus\n") ==
          at + "2: 'bogus' is not of the form TYPE:PATTERN; TYPE is one of " + types);
    CHECK(error_of("deadlock:x") == at + "1: unknown type 'deadlock'; expected one of " + types);
    CHECK(error_of("table_exhausted:x") == at + "1: unknown type 'table_exhausted'; expected one of " + types);
    CHECK(error_of(":x") == at + "1: unknown type ''; expected one of " + types);
    CHECK(error_of("\n\ncircular:  \n") ==
          at + "3: empty pattern after 'circular:'; expected a class name or a function, file or module name ('*' "
               "matches any run)");
    CHECK(error_of(std::string("recursive:a\0b", 13)) ==
          at + "1: the pattern 'a\\x00b' contains a control character; names in reports have none");
    CHECK(error_of("circular:a\tb") ==
          at + "1: the pattern 'a\\tb' contains a control character; names in reports have none");
    CHECK(parse_suppressions("deadlock:x", "we\nird").error.starts_with(
        "fencedep: error: suppressions file 'we\\nird', line 1: "));
    CHECK(parse_suppressions("circular:x\nbogus", "my.supp").rules.empty());
}

TEST_CASE("patterns match as the sanitizers' templates: substrings, '*' runs, '^' and '$' anchors") {
    CHECK(pattern_matches("array", "fence_array->lock"));
    CHECK(pattern_matches("*driver_a*", "(anonymous namespace)::driver_a_submit()"));
    CHECK(pattern_matches("fence*lock", "fence_array->lock/1"));
    CHECK(pattern_matches("^fence_array", "fence_array->lock"));
    CHECK_FALSE(pattern_matches("^array", "fence_array->lock"));
    CHECK(pattern_matches("lock$", "fence_array->lock"));
    CHECK_FALSE(pattern_matches("lock$", "fence_array->lock/1"));
    CHECK(pattern_matches("^fence_array->lock$", "fence_array->lock"));
    CHECK_FALSE(pattern_matches("^fence_array->lock$", "fence_array->lock#2"));
    CHECK(pattern_matches("^a*b*c$", "aXbYbZc"));
    CHECK_FALSE(pattern_matches("^a*b*c$", "aXbYbZ"));
    CHECK(pattern_matches("*", "x"));
    CHECK_FALSE(pattern_matches("*", ""));
    CHECK(pattern_matches("^$x", "$x"));
    CHECK_FALSE(pattern_matches("Array", "fence_array"));
}

TEST_CASE("a rule reads the report's kind, class names and the function, file and module of every frame") {
    report r;
    r.kind = report_kind::circular_dependency;
    r.classes = {"ring->lock", "sched->lock"};
    fencedep::frame f;
    f.function = "drv::submit()";
    f.file = "/src/drv/submit.cpp";
    f.module = "/usr/lib/libdrv.so";
    r.stacks = {{}, {f}};
    const auto rule = [](std::string_view line) {
        auto parsed = parse_suppressions(line, "my.supp");
        REQUIRE(parsed.rules.size() == 1);
        return std::move(parsed.rules.front());
    };
    CHECK(suppresses(rule("circular:sched->lock"), r));
    CHECK(suppresses(rule("circular:drv::submit"), r));
    CHECK(suppresses(rule("circular:*/drv/*.cpp$"), r));
    CHECK(suppresses(rule("circular:libdrv.so"), r));
    CHECK_FALSE(suppresses(rule("circular:other"), r));
    CHECK_FALSE(suppresses(rule("recursive:ring->lock"), r));
}

TEST_CASE("fuzz: random and mutated files never crash the parser, and every rejection names its line") {
    std::mt19937_64 random(20261203);
    const std::vector<std::string> seeds = {
        "# comment\ncircular:fence_array->lock\nrecursive:*driver_a*\n",
        "container:^fence_chain$\r\nunlock:a:b\n\n  freed : x  \n",
        "thread_exit:worker*\nnest_lock:ww_class\n#\n",
    };
    const std::string alphabet = "circular:recursive*^$#\n\r\t \x01:abc->_/";
    const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(random() % n); };
    constexpr int inputs = 20000;
    int rejected = 0;
    for (int i = 0; i < inputs; ++i) {
        std::string text;
        if (i % 4 == 0) {
            // Random bytes, any of the 256.
            text.resize(pick(200));
            for (char& c : text)
                c = static_cast<char>(random());
        } else {
            // A valid file with a few insertions, deletions and replacements from the alphabet.
            text = seeds[pick(seeds.size())];
            for (std::size_t edits = 1 + pick(4); edits > 0; --edits) {
                const std::size_t at = pick(text.size() + 1);
                const char c = alphabet[pick(alphabet.size())];
                switch (pick(3)) {
                case 0: text.insert(at, 1, c); break;
                case 1: if (at < text.size()) text.erase(at, 1); break;
                default: if (at < text.size()) text[at] = c; break;
                }
            }
        }
        INFO("input ", i, ": '", text, "'");
        const auto parsed = parse_suppressions(text, "fuzz.supp");
        if (parsed.error.empty()) {
            for (const auto& rule : parsed.rules) {
                CHECK(!rule.pattern.empty());
                CHECK(rule.line >= 1);
                CHECK(rule.line <= line_count(text));
                pattern_matches(rule.pattern, text);
            }
            continue;
        }
        ++rejected;
        const unsigned line = error_line(parsed.error, "fuzz.supp");
        REQUIRE(line >= 1);
        REQUIRE(line <= line_count(text));
        CHECK(parsed.error.find('\n') == std::string::npos);
        CHECK(parsed.rules.empty());
        // The line named is the first bad one: everything before it parses.
        CHECK(parse_suppressions(lines_before(text, line), "fuzz.supp").error.empty());
    }
    MESSAGE(inputs, " inputs, ", rejected, " rejected, each with its line");
    CHECK(rejected > inputs / 10);
    CHECK(rejected < inputs);
}

}  // TEST_SUITE
