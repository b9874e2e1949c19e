// SPDX-License-Identifier: MIT
// Options: FENCEDEP and FENCEDEP_OPTIONS, read once at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fencedep::detail {

enum class container_rules_mode { off, warn, error };
enum class enable_signaling_mode { locked, unlocked };
// How the pthread preload (fencedep-run) classifies locks it did not see initialized; see the
// README, "Programs you cannot rebuild".
enum class preload_classes_mode { site, address };
// How reports are written to the log: the kernel layout, or one JSON object per line.
enum class log_format_mode { text, json };

struct options {
    bool enabled = false;                 // FENCEDEP=1
    std::string log_path;                 // empty: stderr; "%p" already expanded to the pid
    log_format_mode log_format = log_format_mode::text;
    std::string sarif_path;               // empty: no SARIF log; "%p" already expanded to the pid
    bool abort_on_splat = false;
    int exitcode = 66;                    // 0 leaves the exit status alone
    unsigned stack_depth = 32;            // frames kept per stack trace (1-256)
    bool symbolize = true;
    std::uint32_t max_classes = 8192;     // lock classes (class = key + subclass)
    std::uint32_t max_edges = 32768;      // direct dependencies
    std::uint32_t max_chains = 65536;     // cached lock chains
    unsigned max_lock_depth = 48;         // locks held at once by one thread (1-1024)
    container_rules_mode container_rules = container_rules_mode::warn;
    enable_signaling_mode enable_signaling = enable_signaling_mode::locked;
    preload_classes_mode preload_classes = preload_classes_mode::site;
    std::string graph_path;               // empty: no dump at exit; "%p" already expanded
    std::string suppressions;             // the suppressions file; empty: none
    bool print_suppressions = false;      // list the rules that matched at exit
};

struct parse_result {
    options opts;
    std::vector<std::string> warnings;  // one line each, without trailing newline
    std::string error;                  // non-empty: a malformed value; the process must not go on
};

// Parses the two variables' values (null = unset). Pure: no I/O, no globals. `pid` expands %p.
// FENCEDEP_OPTIONS follows the sanitizers' flag syntax: key=value pairs separated by any run of
// ':', ',', space, tab, CR or LF; a value opening with ' or " runs to the same quote, separators
// included, and must be followed by a separator or the end.
parse_result parse_options(const char* fencedep, const char* fencedep_options, int pid);

// The options in force. Filled from the environment once, before main, by load_options().
options& current_options();

// Writes `text` and a newline to stderr in one write(2), so that lines from concurrent processes
// sharing stderr stay whole. For start-up diagnostics, before the log is open.
void write_stderr_line(const std::string& text);

// Reads the environment, prints warnings to stderr, and on a malformed value prints the error
// and exits the process with status 2. Called once by the engine's start-up constructor.
void load_options();

}  // namespace fencedep::detail
