// SPDX-License-Identifier: MIT
// Suppressions: parsing the file, matching reports, and the exit-time summary.
#include "report/suppressions.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "config/escape.h"
#include "config/options.h"

namespace fencedep::detail {

namespace {

struct suppression_type {
    std::string_view name;
    report_kind kind;
};

// One type per report a user may reasonably decide to live with. The reports that say fencedep
// itself stopped validating (table_exhausted, lock_depth_exceeded) or that the program misuses
// the API (invalid_subclass) are not suppressible: hiding them would hide that the run proved
// less than it seems to.
constexpr suppression_type types[] = {
    {"circular", report_kind::circular_dependency},
    {"recursive", report_kind::recursive_locking},
    {"unlock", report_kind::bad_unlock_balance},
    {"freed", report_kind::held_lock_freed},
    {"thread_exit", report_kind::lock_held_at_thread_exit},
    {"container", report_kind::fence_container_nesting},
    {"nest_lock", report_kind::nest_lock_not_held},
};

std::string accepted_types() {
    std::string list;
    for (const suppression_type& t : types) {
        if (!list.empty())
            list += ", ";
        list += t.name;
    }
    return list;
}

std::string_view trim(std::string_view text) {
    constexpr std::string_view blanks = " \t\r";
    const std::size_t start = text.find_first_not_of(blanks);
    if (start == std::string_view::npos)
        return {};
    return text.substr(start, text.find_last_not_of(blanks) - start + 1);
}

// Returns what is wrong with `line` (trimmed, not a comment), or an empty string after adding
// its rule.
std::string parse_line(std::string_view line, unsigned number, std::vector<suppression_rule>& rules) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos)
        return "'" + escape(line) + "' is not of the form TYPE:PATTERN; TYPE is one of " + accepted_types();
    const std::string_view type = trim(line.substr(0, colon));
    const std::string_view pattern = trim(line.substr(colon + 1));
    const auto known = std::find_if(std::begin(types), std::end(types),
                                    [&](const suppression_type& t) { return t.name == type; });
    if (known == std::end(types))
        return "unknown type '" + escape(type) + "'; expected one of " + accepted_types();
    if (pattern.empty())
        return "empty pattern after '" + escape(type) +
               ":'; expected a class name or a function, file or module name ('*' matches any run)";
    const auto control = std::find_if(pattern.begin(), pattern.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
    });
    if (control != pattern.end())
        return "the pattern '" + escape(pattern) + "' contains a control character; names in reports have none";
    suppression_rule& rule = rules.emplace_back();
    rule.kind = known->kind;
    rule.type = type;
    rule.pattern = pattern;
    rule.line = number;
    return {};
}

// Greedy match of `pattern` (with '*') against the whole of `text`, backtracking to the last '*':
// O(|pattern| * |text|) at worst, no recursion, so no input can exhaust the stack.
bool glob_whole(std::string_view pattern, std::string_view text) {
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star = std::string_view::npos;
    std::size_t star_text = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            star_text = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++star_text;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

bool frame_matches(const std::string& pattern, const frame& f) {
    return pattern_matches(pattern, f.function) || pattern_matches(pattern, f.file) ||
           pattern_matches(pattern, f.module);
}

// The rules and the file they came from; never destroyed, since reports may be made while the
// process exits. Written once at start-up, before validation can be on.
struct loaded_rules {
    std::string file;
    std::vector<suppression_rule> rules;
};

loaded_rules& loaded() {
    static loaded_rules* rules = new loaded_rules;
    return *rules;
}

// The whole file, or the errno that stopped reading it.
int read_whole(const std::string& path, std::string& text) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char buffer[4096];
    for (;;) {
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int error = errno;
            close(fd);
            return error;
        }
        if (n == 0)
            break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    close(fd);
    return 0;
}

}  // namespace

suppressions_parse parse_suppressions(std::string_view text, std::string_view file) {
    suppressions_parse result;
    unsigned number = 0;
    while (!text.empty()) {
        ++number;
        const std::size_t end = text.find('\n');
        const std::string_view line = trim(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (line.empty() || line.front() == '#')
            continue;
        const std::string what = parse_line(line, number, result.rules);
        if (!what.empty()) {
            result.rules.clear();
            result.error = fmt::format("fencedep: error: suppressions file '{}', line {}: {}", escape(file), number, what);
            return result;
        }
    }
    return result;
}

bool pattern_matches(std::string_view pattern, std::string_view text) {
    if (text.empty())
        return false;
    const bool at_start = !pattern.empty() && pattern.front() == '^';
    if (at_start)
        pattern.remove_prefix(1);
    const bool at_end = !pattern.empty() && pattern.back() == '$';
    if (at_end)
        pattern.remove_suffix(1);
    // An unanchored side is an implicit '*'.
    std::string whole;
    whole.reserve(pattern.size() + 2);
    if (!at_start)
        whole += '*';
    whole += pattern;
    if (!at_end)
        whole += '*';
    return glob_whole(whole, text);
}

bool suppresses(const suppression_rule& rule, const report& r) {
    if (r.kind != rule.kind)
        return false;
    for (const std::string& name : r.classes)
        if (pattern_matches(rule.pattern, name))
            return true;
    for (const std::vector<frame>& stack : r.stacks)
        for (const frame& f : stack)
            if (frame_matches(rule.pattern, f))
                return true;
    return false;
}

void load_suppressions() {
    const std::string& path = current_options().suppressions;
    if (path.empty())
        return;
    std::string text;
    if (const int error = read_whole(path, text); error != 0) {
        write_stderr_line(fmt::format("fencedep: error: cannot read suppressions file '{}': {}", escape(path),
                                      std::strerror(error)));
        // As for a malformed option: running without the suppressions the user asked for would
        // fail the run on reports they meant to hold back.
        _exit(2);
    }
    suppressions_parse parsed = parse_suppressions(text, path);
    if (!parsed.error.empty()) {
        write_stderr_line(parsed.error);
        _exit(2);
    }
    loaded().file = path;
    loaded().rules = std::move(parsed.rules);
}

const suppression_rule* suppressed(const report& r) {
    for (const suppression_rule& rule : loaded().rules) {
        if (suppresses(rule, r)) {
            rule.hits->fetch_add(1, std::memory_order_relaxed);
            return &rule;
        }
    }
    return nullptr;
}

const std::string& suppressions_file() { return loaded().file; }

std::string suppressions_summary() {
    const loaded_rules& l = loaded();
    std::uint64_t reports = 0;
    std::size_t used = 0;
    for (const suppression_rule& rule : l.rules) {
        const std::uint64_t hits = rule.hits->load(std::memory_order_relaxed);
        reports += hits;
        used += hits > 0;
    }
    if (reports == 0)
        return {};
    std::string text = fmt::format("fencedep: {} report{} suppressed by {} rule{}\n", reports, reports == 1 ? "" : "s",
                                   used, used == 1 ? "" : "s");
    if (!current_options().print_suppressions)
        return text;
    text += "Suppressions used:\n  count rule\n";
    for (const suppression_rule& rule : l.rules) {
        const std::uint64_t hits = rule.hits->load(std::memory_order_relaxed);
        if (hits > 0)
            text += fmt::format("{:>7} {}:{} ({}:{})\n", hits, rule.type, rule.pattern, escape(l.file), rule.line);
    }
    return text;
}

}  // namespace fencedep::detail
