// SPDX-License-Identifier: MIT
// Parsing and loading of FENCEDEP and FENCEDEP_OPTIONS.
#include "config/options.h"

#include "config/escape.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <type_traits>

namespace fencedep::detail {

namespace {

// A key's parser stores the value into the options and returns an empty string, or, when the value
// is malformed, returns what the key accepts (the tail of the error line).
using setter = std::string (*)(options& opts, std::string_view value, int pid);

struct key_spec {
    std::string_view name;
    setter set;
};

// Every limit is far below 2^60, so checking against `max` after each digit also keeps a long run
// of digits from wrapping around.
std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max) {
    if (text.empty())
        return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
        if (value > max)
            return std::nullopt;
    }
    return value;
}

std::optional<bool> parse_bool(std::string_view text) {
    if (text == "1" || text == "true")
        return true;
    if (text == "0" || text == "false")
        return false;
    return std::nullopt;
}

template <auto Member, std::uint64_t Min, std::uint64_t Max>
std::string set_number(options& opts, std::string_view value, int) {
    const auto parsed = parse_decimal(value, Max);
    if (!parsed || *parsed < Min)
        return "expected an integer from " + std::to_string(Min) + " to " + std::to_string(Max);
    using field = std::remove_reference_t<decltype(opts.*Member)>;
    opts.*Member = static_cast<field>(*parsed);
    return {};
}

template <auto Member>
std::string set_bool(options& opts, std::string_view value, int) {
    const auto parsed = parse_bool(value);
    if (!parsed)
        return "expected 0, 1, true or false";
    opts.*Member = *parsed;
    return {};
}

// A file path option (log_path, sarif_path, graph_path): "%p" becomes the pid, as in the
// sanitizers' log_path.
template <auto Member>
std::string set_path(options& opts, std::string_view value, int pid) {
    if (value.empty())
        return "expected a non-empty file path (%p expands to the pid)";
    const std::string pid_text = std::to_string(pid);
    std::string path;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '%' && i + 1 < value.size() && value[i + 1] == 'p') {
            path += pid_text;
            ++i;
        } else {
            path += value[i];
        }
    }
    opts.*Member = std::move(path);
    return {};
}

// An option that names one value of an enum: `Names` spells them in the enum's order.
template <auto Member, const auto& Names>
std::string set_choice(options& opts, std::string_view value, int) {
    using mode = std::remove_reference_t<decltype(opts.*Member)>;
    const std::size_t count = std::size(Names);
    for (std::size_t i = 0; i < count; ++i) {
        if (value == Names[i]) {
            opts.*Member = static_cast<mode>(i);
            return {};
        }
    }
    std::string expected = "expected ";
    for (std::size_t i = 0; i < count; ++i)
        expected.append(i == 0 ? "" : i + 1 == count ? " or " : ", ").append(Names[i]);
    return expected;
}
constexpr std::string_view log_formats[] = {"text", "json"};
constexpr std::string_view container_rules_modes[] = {"off", "warn", "error"};
constexpr std::string_view enable_signaling_modes[] = {"locked", "unlocked"};
constexpr std::string_view preload_classes_modes[] = {"site", "address"};

std::string set_suppressions(options& opts, std::string_view value, int) {
    if (value.empty())
        return "expected a non-empty file path";
    opts.suppressions = value;
    return {};
}

// In the order the warning for an unknown key lists them.
constexpr key_spec keys[] = {
    {"log_path", set_path<&options::log_path>},
    {"log_format", set_choice<&options::log_format, log_formats>},
    {"sarif_path", set_path<&options::sarif_path>},
    {"abort_on_splat", set_bool<&options::abort_on_splat>},
    {"exitcode", set_number<&options::exitcode, 0, 255>},
    {"stack_depth", set_number<&options::stack_depth, 1, 256>},
    {"symbolize", set_bool<&options::symbolize>},
    {"max_classes", set_number<&options::max_classes, 1, 4194304>},
    {"max_edges", set_number<&options::max_edges, 1, 16777216>},
    {"max_chains", set_number<&options::max_chains, 1, 16777216>},
    {"max_lock_depth", set_number<&options::max_lock_depth, 1, 1024>},
    {"container_rules", set_choice<&options::container_rules, container_rules_modes>},
    {"enable_signaling", set_choice<&options::enable_signaling, enable_signaling_modes>},
    {"preload_classes", set_choice<&options::preload_classes, preload_classes_modes>},
    {"graph_path", set_path<&options::graph_path>},
    {"suppressions", set_suppressions},
    {"print_suppressions", set_bool<&options::print_suppressions>},
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Levenshtein distance, one row at a time.
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({above + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string unknown_key_warning(std::string_view key) {
    std::string line = "fencedep: warning: unknown option '";
    line += escape(key);
    line += "' in FENCEDEP_OPTIONS; known options: ";
    const key_spec* closest = nullptr;
    std::size_t closest_distance = 3;  // suggest only keys within two edits
    for (const key_spec& spec : keys) {
        if (&spec != keys)
            line += ", ";
        line += spec.name;
        const std::size_t distance = edit_distance(key, spec.name);
        if (distance < closest_distance) {
            closest = &spec;
            closest_distance = distance;
        }
    }
    if (closest) {
        line += " (did you mean '";
        line += closest->name;
        line += "'?)";
    }
    return line;
}

std::string options_error(std::string_view what) {
    std::string line = "fencedep: error: FENCEDEP_OPTIONS: ";
    line += what;
    return line;
}

// The sanitizers' separators, so that a line copied from ASAN_OPTIONS or TSAN_OPTIONS habits
// (`a=1,b=2`, `a=1 b=2`) means what it says.
constexpr std::string_view separators = ":, \t\n\r";

bool is_separator(char c) { return separators.find(c) != std::string_view::npos; }

void apply(std::string_view key, std::string_view value, int pid, parse_result& result) {
    const auto spec = std::find_if(std::begin(keys), std::end(keys),
                                   [&](const key_spec& candidate) { return candidate.name == key; });
    if (spec == std::end(keys)) {
        result.warnings.push_back(unknown_key_warning(key));
        return;
    }
    const std::string expected = spec->set(result.opts, value, pid);
    if (!expected.empty()) {
        std::string what = "invalid value '";
        what += escape(value);
        what += "' for '";
        what += escape(key);
        what += "': ";
        what += expected;
        result.error = options_error(what);
    }
}

// Reads one key=value from the start of `rest` (which begins with neither a separator nor the
// end) and removes it. A value opening with ' or " runs to the same quote, separators included,
// as in the sanitizers' flag parser.
void parse_one(std::string_view& rest, int pid, parse_result& result) {
    std::size_t key_end = 0;
    while (key_end < rest.size() && rest[key_end] != '=' && !is_separator(rest[key_end]))
        ++key_end;
    if (key_end == 0 || key_end == rest.size() || rest[key_end] != '=') {
        const std::string_view token = rest.substr(0, rest.find_first_of(separators));
        result.error = options_error("'" + escape(token) + "' is not of the form key=value");
        return;
    }
    const std::string_view key = rest.substr(0, key_end);
    rest.remove_prefix(key_end + 1);
    std::string_view value;
    if (!rest.empty() && (rest.front() == '\'' || rest.front() == '"')) {
        const char quote = rest.front();
        const std::size_t close = rest.find(quote, 1);
        if (close == std::string_view::npos) {
            result.error = options_error("the value of '" + escape(key) + "' opens a quote (" + quote +
                                         ") that is not closed");
            return;
        }
        value = rest.substr(1, close - 1);
        rest.remove_prefix(close + 1);
        if (!rest.empty() && !is_separator(rest.front())) {
            result.error = options_error("the quoted value of '" + escape(key) +
                                         "' is followed by more text; separate options with ':', ',' or white space");
            return;
        }
    } else {
        value = rest.substr(0, rest.find_first_of(separators));
        rest.remove_prefix(value.size());
    }
    apply(key, value, pid, result);
}

}  // namespace

parse_result parse_options(const char* fencedep, const char* fencedep_options, int pid) {
    parse_result result;
    if (fencedep) {
        const std::string_view value = fencedep;
        if (value == "1") {
            result.opts.enabled = true;
        } else if (value != "0") {
            result.error = "fencedep: error: FENCEDEP='" + escape(value) + "': expected 0 or 1";
            return result;
        }
    }
    // The options are checked even while fencedep is off, so that a typo shows up on the first
    // run rather than on the day someone switches validation on.
    if (!fencedep_options)
        return result;
    std::string_view rest = fencedep_options;
    while (result.error.empty()) {
        const std::size_t start = rest.find_first_not_of(separators);
        if (start == std::string_view::npos)
            break;
        rest.remove_prefix(start);
        parse_one(rest, pid, result);
    }
    return result;
}

void write_stderr_line(const std::string& text) {
    const std::string line = text + '\n';
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t written = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;
        done += static_cast<std::size_t>(written);
    }
}

options& current_options() {
    // Never destroyed: exit-time code (the report sink's exit status, threads still running when
    // main returns) may read the options after static destructors have run. Built on first use,
    // so other translation units' constructors can call this in any order.
    static options& opts = *new options;
    return opts;
}

void load_options() {
    const parse_result result =
        parse_options(std::getenv("FENCEDEP"), std::getenv("FENCEDEP_OPTIONS"), ::getpid());
    for (const std::string& warning : result.warnings)
        write_stderr_line(warning);
    if (!result.error.empty()) {
        write_stderr_line(result.error);
        // Before main: there is nothing sensible to unwind or flush, and running the program with
        // options the user did not ask for would be worse than stopping.
        ::_exit(2);
    }
    current_options() = result.opts;
}

}  // namespace fencedep::detail
