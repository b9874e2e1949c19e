// SPDX-License-Identifier: MIT
// Renders a pending report as a fencedep::report, and the pieces of that layout that other
// renderings share (fencedep-graph prints merged cycles with them).
#pragma once

#include <string>
#include <vector>

#include <fencedep/report.h>

#include "report/pending.h"

namespace fencedep::detail {

// Symbolizes the report's stacks (unless the symbolize option is 0) and renders its text.
report render(const pending_report& pending);

// A stack as reports show it: symbolized (unless symbolize=0), fencedep's own leading frames
// trimmed, at most stack_depth frames. Captures keep some frames beyond stack_depth, so that
// stack_depth frames of the user's code remain after the trim.
std::vector<frame> report_frames(stack_id id);

// One frame as a report line prints it: "function+0xoff/0xsize file:line".
std::string frame_text(const frame& f);

// A context record as one line: "enabling signaling on fence_array ctx 9 seqno 1, ...".
std::string context_line(const context_record& record);

// A circular dependency from symbolized data: the classes c0 -> c1 -> ... -> prev recorded, and
// `subject` (c0) taken (or recorded) under `held` (prev), closing the cycle.
struct cycle_layout {
    struct link {
        std::string name;
        lock_kind kind = lock_kind::write;  // how the link's lock was taken
        std::vector<frame> stack;
        std::string context;             // context_line() of where it was taken; may be empty
        std::vector<std::string> notes;  // extra lines under the link (the run that recorded it)
    };
    std::vector<link> chain;  // from #N (held) down to #0 (subject)
    std::string subject;
    lock_kind subject_kind = lock_kind::write;
    std::string held;
    lock_kind held_kind = lock_kind::write;
    std::string parent;  // the class before `held` on the chain
    lock_kind parent_kind = lock_kind::write;
    bool happening_now = false;  // #0 is the acquisition being validated ("taken while")
};

// The note above a cycle through fence_signalling that says what that pseudo-lock stands for;
// nothing for other cycles.
void append_signalling_note(std::string& text, const cycle_layout& cycle);

// The kernel layout from "the existing dependency chain (in reverse order) is:" through
// " *** DEADLOCK ***": the links with their stacks, "Chain exists of:" and the CPU0/CPU1 scenario.
void append_cycle(std::string& text, const cycle_layout& cycle);

}  // namespace fencedep::detail
