// SPDX-License-Identifier: MIT
// What the engine hands to the report layer: a report's facts, before symbolization and text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fencedep/lockdep.h>
#include <fencedep/report.h>

#include "stack/stack.h"

namespace fencedep::detail {

// A context frame copied out of a thread's context stack, so it outlives the fence operation.
struct context_copy {
    fence_op op;
    std::string kind;
    std::string driver;
    std::string timeline;
    std::uint64_t context;
    std::uint64_t seqno;
    std::string file;
    unsigned line = 0;
};
// The context frames active when something happened, outermost first; `cut` counts the
// innermost ones past the engine's bound, which were not stored.
struct context_record {
    std::vector<context_copy> frames;
    unsigned cut = 0;
    bool empty() const { return frames.empty(); }
};

// One lock as a report line prints it.
struct lock_ref {
    std::string name;              // class name with #version and /subclass suffixes
    std::string label;             // the lock's own name where it differs from its class's; else empty
    // How the lock is held or being taken; empty for a lock that is not held (a bad unlock).
    std::optional<lock_kind> kind;
    const void* instance = nullptr;
    const void* ip = nullptr;      // acquire site ("at:"); null if unknown
    stack_id stack = 0;            // the acquisition's stack, if it was captured; preferred to ip
    // The return address of the function `ip` lies in: the "at:" when `ip` is fencedep's own
    // code (a std::lock_guard, the fence layer) and that function is no longer on the stack.
    const void* outer_ip = nullptr;
    context_record context;        // the frames the lock was taken under, if still known
};

// One "-> #N" entry of a circular dependency.
struct chain_link {
    std::string name;
    lock_kind kind = lock_kind::write;  // how the link's lock was taken when its edge was recorded
    stack_id stack = 0;
    context_record context;
};

// Everything a rendering needs, gathered under the engine's lock; strings are copies, so the
// report stays valid whatever the program does next.
struct pending_report {
    report_kind kind{};
    bool is_splat = true;
    std::string title;                  // the header; empty: "WARNING: " + report_title(kind)
    std::string thread;                 // "<name>/<tid>"
    lock_ref subject;                   // the lock being acquired, released or freed
    lock_ref held;                      // the held lock it conflicts with (circular, recursive)
    std::vector<chain_link> chain;      // circular: from #N (held) down to #0 (subject)
    std::string parent;                 // circular: the class before `held` on the path
    lock_kind parent_kind = lock_kind::write;  // circular: how `parent` was held on that path
    std::vector<lock_ref> held_locks;   // the thread's held-lock stack, bottom first
    context_record context;             // the thread's context frames now
    stack_id stack = 0;                 // the current stack
    std::vector<std::string> lines;     // kind-specific message lines
};

// Symbolizes, renders and delivers a report to the handler or the log; counts splats, and
// aborts if abort_on_splat is set. A report a suppression rule matches is only counted against
// that rule (suppressions.h). Called outside the engine's lock, on the reporting thread,
// with the re-entry guard raised.
// Splats written to the log (not those a handler took) set the exit status: when the process
// exits, after every other exit-time handler and destructor, the report layer writes the SARIF
// log (sarif_path: every report, handlers' included) and then ends it with the exitcode option.
void deliver(pending_report&& pending);

// Opens the log named by the options (or keeps stderr). Returns false with a message on stderr
// if the file cannot be opened; reports then go to stderr, as they do from the first write the
// file refuses.
bool open_log();

// Zeroes splat_count() (reset()).
void reset_splat_count() noexcept;

// fork() support: takes (`held`) or releases the report layer's locks, the report handler
// slot's, the log's and the SARIF log's.
void hold_handler_lock(bool held) noexcept;

}  // namespace fencedep::detail
