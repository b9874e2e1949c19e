// SPDX-License-Identifier: MIT
// The fence layer's per-thread bookkeeping: operation nesting, context frames, deferred work.
#pragma once

#include <new>

#include <fencedep/fence.h>
#include <fencedep/lockdep.h>

#include "config/options.h"
#include "engine/engine.h"

namespace fencedep::detail {

// Marks the calling thread as inside a fence operation. The outermost scope, when it ends, runs
// the thread's deferred work (see "Deferred work" in fence.h).
class operation_scope {
public:
    operation_scope() noexcept;
    ~operation_scope();
    operation_scope(const operation_scope&) = delete;
    operation_scope& operator=(const operation_scope&) = delete;
};

// Names a frame on `subject`, a fence, as context lines print it (context_frame::name).
void name_fence(context_frame& frame) noexcept;

// Asks frame_scope to name its fence when the frame is pushed rather than on demand: for a
// frame that stays pushed while the fence is destroyed (release).
struct name_now_t {};
inline constexpr name_now_t name_now{};

// Pushes a context frame for `op` on `f`, only when fencedep is on: context_scope's push,
// inlined. The frame names the fence on demand, so that an operation whose locks are all known
// does not pay for the fence's virtual name ops: `f` must outlive the scope.
class frame_scope {
public:
    frame_scope(fence_op op, const fence& f) noexcept {
        if (enabled()) {
            new (&frame_) context_frame{.op = op, .name = &name_fence, .subject = &f};
            pushed_ = push_frame(frame_);
        }
    }
    frame_scope(fence_op op, const fence& f, name_now_t) noexcept {
        if (enabled()) {
            new (&frame_) context_frame{.op = op, .subject = &f};
            name_fence(frame_);
            pushed_ = push_frame(frame_);
        }
    }
    ~frame_scope() { pop_frame(pushed_); }
    frame_scope(const frame_scope&) = delete;
    frame_scope& operator=(const frame_scope&) = delete;

private:
    union {
        context_frame frame_;  // built only when fencedep is on; the engine points at it
    };
    frame_pushed pushed_ = frame_pushed::no;
};

// Appends `work` to the calling thread's deferred queue. The item must not be queued already.
void queue_deferred(deferred_work& work) noexcept;

// Runs the calling thread's deferred work if the caller is the thread's outermost fence
// operation: a waiter calls it before sleeping, so that it never waits for its own queue.
void run_deferred_before_blocking() noexcept;

// The enable_signaling option in force.
inline bool enable_signaling_unlocked() noexcept {
    return current_options().enable_signaling == enable_signaling_mode::unlocked;
}

}  // namespace fencedep::detail
