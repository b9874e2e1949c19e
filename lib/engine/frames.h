// SPDX-License-Identifier: MIT
// Pushing and popping context frames (lockdep.h, context_scope). Inline, because the fence layer
// pushes one or two frames on every operation: there it costs a few stores, without a call.
#pragma once

#include <fencedep/lockdep.h>

#include "engine/thread_state.h"

namespace fencedep::detail {

// Pushes for a thread whose state is not current (its first push, or one from inside the
// validator, which pushes nothing), and for a deferred_work frame, whose lock segment starts at
// the held stack and needs it current. Out of line: it may create the state.
frame_pushed push_frame_slow(const context_frame& frame) noexcept;
// Ends the lock segment a deferred_work frame began.
void end_segment(thread_state& ts) noexcept;

// Stores `frame` on the thread's context stack: its address, a fresh serial, and the mark that
// acquisitions copy (frame_mark). Allocates nothing and reports nothing, so it needs no re-entry
// guard. A plain frame touches only the frame stack, which enable(true) leaves alone, so it
// needs no look at the epoch either.
FENCEDEP_ALWAYS_INLINE void store_frame(thread_state& ts, const context_frame& frame) noexcept {
    const unsigned depth = ts.frame_depth++;
    if (depth < max_context_frames) {
        const std::uint32_t serial = ++ts.next_frame_serial;
        ts.frames[depth] = &frame;
        ts.frame_serials[depth + 1] = serial;
        ts.frames_mark = {depth + 1, serial};
    }
}

// Pushes `frame` (which must stay where it is until popped) and returns how, for pop_frame().
// Requires: fencedep is on.
FENCEDEP_ALWAYS_INLINE frame_pushed push_frame(const context_frame& frame) noexcept {
    thread_state* ts = hot_thread_state;
    if (!ts || frame.op == fence_op::deferred_work) [[unlikely]]
        return push_frame_slow(frame);
    store_frame(*ts, frame);
    return frame_pushed::plain;
}

// Pops the frame that push_frame() pushed as `how` (nothing for frame_pushed::no). The state
// exists, since the push found it.
FENCEDEP_ALWAYS_INLINE void pop_frame(frame_pushed how) noexcept {
    if (how == frame_pushed::no)
        return;
    thread_state* ts = this_thread_state;
    if (!ts)
        return;
    const unsigned depth = --ts->frame_depth;
    if (depth < max_context_frames)
        ts->frames_mark = {depth, ts->frame_serials[depth]};
    if (how == frame_pushed::segment) [[unlikely]]
        end_segment(*ts);
}

}  // namespace fencedep::detail
