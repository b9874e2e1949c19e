// SPDX-License-Identifier: MIT
// The fence layer's per-thread bookkeeping: operation nesting, context frames, deferred work.
#pragma once

#include <optional>

#include <fencedep/fence.h>
#include <fencedep/lockdep.h>

#include "config/options.h"

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

// Pushes a context frame for `op` on `f`, only when fencedep is on: building the frame calls
// the fence's virtual name ops, which the off path must not pay for.
class frame_scope {
public:
    frame_scope(fence_op op, const fence& f) noexcept {
        if (enabled()) {
            frame_.emplace(context_frame{op, f.kind_name(), f.driver_name(), f.timeline_name(),
                                         f.context(), f.seqno()});
            scope_.emplace(*frame_);
        }
    }
    frame_scope(const frame_scope&) = delete;
    frame_scope& operator=(const frame_scope&) = delete;

private:
    std::optional<context_frame> frame_;  // the engine keeps a pointer to it while pushed
    std::optional<context_scope> scope_;
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
