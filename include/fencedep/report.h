// SPDX-License-Identifier: MIT
// Reports: the structured form of every splat and warning, and the handler that receives them.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#if defined(__GNUC__)
#define FENCEDEP_REPORT_API __attribute__((visibility("default")))
#else
#define FENCEDEP_REPORT_API
#endif

namespace fencedep {

enum class report_kind {
    circular_dependency,       // "possible circular locking dependency detected"
    recursive_locking,         // "possible recursive locking detected"
    bad_unlock_balance,        // "bad unlock balance detected!"
    held_lock_freed,           // "held lock freed!"
    lock_held_at_thread_exit,  // "<thread> still has locks held!"
    table_exhausted,           // a table is full; validation turns itself off
    lock_depth_exceeded,       // more locks held at once than max_lock_depth
    invalid_subclass,          // a subclass above 7 was asked for
    fence_container_nesting,   // a fence container placed inside another container
    nest_lock_not_held,        // "Nested lock was not taken": a nest_lock this thread does not hold
};

// The text of the header line of a report of this kind, e.g. "possible recursive locking detected".
FENCEDEP_REPORT_API const char* report_title(report_kind kind) noexcept;

// The kind's identifier as the machine-readable renderings spell it (the JSON Lines "kind", the
// SARIF rule id): the enumerator's name, e.g. "recursive_locking".
FENCEDEP_REPORT_API const char* report_kind_name(report_kind kind) noexcept;

// One symbolized stack frame. Fields that could not be found are empty or zero.
struct frame {
    std::uintptr_t address = 0;
    std::string function;  // demangled, without parameters' defaults; empty if unknown
    std::uintptr_t offset = 0;  // from the start of the function
    std::uintptr_t size = 0;    // of the function, 0 if unknown
    std::string file;  // source file, from debug info
    unsigned line = 0;
    std::string module;  // the object file (executable or shared library)
    // address - the module's load base: with `module`, what an offline symbolizer needs
    // (addr2line -e module), as the sanitizers print "module+0xoffset".
    std::uintptr_t module_offset = 0;
    // Inlined into the next frame: both are at `address`, and this frame's offset/size are 0.
    bool inlined = false;
};

// A report, as built by the validator. Every rendering (the kernel-layout text today) is made
// from this object, and a report handler receives it whole.
//
// For circular_dependency, `classes` lists the cycle as the splat prints its "-> #N" links:
// the held lock first (#N) down to the lock being acquired (#0), and `stacks[i]` and
// `contexts[i]` belong to `classes[i]`: the stack saved when that link's edge was first recorded
// (for #0, the current stack) and the fence context it was recorded under ("" if none).
// For the other lock reports `classes` holds the lock(s) named in the header, and `stacks` holds
// the current stack (and, where a second site matters, the earlier one after it).
struct report {
    report_kind kind{};
    std::string title;                         // the header line exactly as printed, e.g.
                                               // "WARNING: " + report_title(kind)
    std::vector<std::string> classes;          // class names, as printed: control characters
                                               // escaped (\n, \t, \xNN), backslashes doubled
    std::vector<std::vector<frame>> stacks;    // symbolized, fencedep's own frames trimmed
    std::vector<std::string> contexts;         // fence context lines, parallel to `classes`
    std::string thread;                        // "<name>/<tid>" of the reporting thread, the
                                               // name escaped like the class names
    bool is_splat = true;                      // false for warnings that do not count
    std::string text;                          // the rendered report, as the default sink prints it
    // The report's identity, 16 lowercase hex digits: the same for the same hazard in every run
    // of the same program, so that a tool can tell a known report from a new one. It is a hash of
    // the kind, the title and the classes (for a cycle, rotated to start at its least name, so
    // that the cycle is one report whichever acquisition closed it) and, for every kind but a
    // cycle, the function, file and line of `location`: names only, never addresses or pids.
    std::string id;
    // The user's frame the report points at: the first frame of the current stack (or, if there
    // is none, of the first stack) that is neither fencedep's nor the standard library's. Empty
    // (all fields zero) if no stack was captured.
    frame location;
};

using report_handler = std::function<void(const report&)>;

// Installs `handler` to receive every report instead of the default sink. Passing an empty
// function restores the default sink. Returns the previous handler (empty for the default).
//
// The default sink writes `text` to the log (stderr, or the file named by the log_path option);
// with log_format=json, the report as one line of JSON instead (README, "Machine-readable
// reports"). With the sarif_path option, every report, a handler's or the sink's, is also kept
// for the SARIF log written at exit.
// One report is written at a time, so reports from concurrent threads never cut into one another,
// even on a pipe. If the log file refuses a write (a full disk, /dev/full), fencedep says so once
// on stderr, with the path and the reason, and writes that report and all later ones to stderr.
// When the process exits, if splats were written to the log, the exit status becomes the exitcode
// option (66 unless set; 0 leaves the status alone). This happens last, after the program's static
// destructors, its atexit handlers and the destructor functions of the executable (gcov's coverage
// data writer among them), so none of them is skipped.
//
// A report that a rule of the suppressions file matches (README, "Suppressions and declared
// orders") reaches neither the handler nor the log, does not count for the exit status and does
// not abort; it is counted in the summary written to the log at exit.
//
// The handler runs on the reporting thread, outside the engine's lock; fencedep events it causes
// are ignored. Handlers of concurrent reports may run concurrently. Reports a handler receives do
// not change the exit status.
//
// A handler may throw (a test framework's FAIL() does), but the exception cannot reach the code
// that took the lock: the lock functions are noexcept. fencedep catches it, writes one line to the
// log naming it ("the report handler threw (<what()>); the report follows", or "an exception that
// is not a std::exception"), and then writes the report as the default sink would, so the report
// is not lost and counts for the exit status. The handler stays installed and gets the next report.
FENCEDEP_REPORT_API report_handler set_report_handler(report_handler handler);

// Writes `r` as the default sink does: its text to the log, one whole report at a time, and a
// splat makes the exit status the exitcode option. For a handler that takes some reports and
// leaves the others where they would have gone without it: the test-framework adapters
// (doctest.h, gtest.h) pass on warnings and reports raised outside a test case this way.
// Takes the log's lock; fencedep events it causes are ignored. Does not change splat_count()
// (the report was counted when it was made).
FENCEDEP_REPORT_API void log_report(const report& r);

// Returns how many splats (reports with is_splat) were made since start-up or the last reset(),
// not counting suppressed ones.
FENCEDEP_REPORT_API std::uint64_t splat_count() noexcept;

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
