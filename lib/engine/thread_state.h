// SPDX-License-Identifier: MIT
// Per-thread validator state: the held-lock stack, the running chain key and the context frames.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>

#include <fencedep/lockdep.h>

namespace fencedep::detail {

// Deep enough for any composition of fence operations a reader can follow; deeper frames are
// counted, and reports mark where the stored ones stop.
inline constexpr unsigned max_context_frames = 32;

// Which context frames were active at an acquisition: how many of them are stored, and the
// serial of the innermost stored one, so that a report can tell whether those frames are still
// the ones pushed now. The thread keeps the current mark up to date as frames come and go, so
// that an acquisition copies it in one word.
struct frame_mark {
    std::uint32_t depth = 0;
    std::uint32_t serial = 0;
};

// Laid out in the order the fast path writes it.
struct held_lock {
    // The lock. In a slot shared by several locks of one class under a nest_lock, the first
    // one, or null once that one is released while others remain.
    const lock_map* instance;
    // The acquire site: where the instrumented lock function was inlined (a std::lock_guard, the
    // fence layer, or the user's function), and that function's own return address. Reports
    // resolve the user's frame from them lazily (render.cpp), so the fast path only stores them.
    const void* ip;
    const void* outer_ip;
    std::uint64_t prev_chain_key;  // the chain key below this entry, restored when it goes
    std::uint32_t class_id;
    lock_kind kind;
    bool trylock;
    // Whether every lock held below this one in its segment is known to precede its class in the
    // graph through a path that goes on through it (a strong path, dependencies.cpp). Trylocks,
    // recursive readers, recursive acquisitions and acquisitions with a refused edge are not
    // covered; see the recording rule in dependencies.cpp.
    bool covered;
    frame_mark frames;
    const lock_map* nest_lock;  // the acquisition's nest_lock, or null
    // In a shared slot, the key of its locks: the slot matches any lock that has it. Else null.
    const lock_class_key* key;
    // 0 for a slot of one lock; else the number of locks sharing the slot (lockdep's references).
    std::uint32_t references;
    // The stack of this acquisition when it took the slow path (a new chain), else 0. Reports
    // prefer its first user frame to `ip` as the "at:".
    std::uint32_t site_stack;
};

struct thread_state {
    std::uint64_t epoch = 0;       // the engine epoch this state's held stack belongs to
    unsigned depth = 0;
    unsigned capacity = 0;
    std::unique_ptr<held_lock[]> held;
    std::uint64_t chain_key = 0;   // set with the epoch (initial_chain_key)
    // Acquisitions past `capacity`, not tracked; their releases are matched against this count.
    unsigned untracked = 0;
    const context_frame* frames[max_context_frames] = {};
    // frame_serials[d]: for the stored frame at depth d (frames[d - 1]), a number no other push
    // on this thread had (see frame_mark); [0], for no frame, stays 0.
    std::uint32_t frame_serials[max_context_frames + 1] = {};
    std::uint32_t next_frame_serial = 0;
    unsigned frame_depth = 0;  // may exceed max_context_frames; only the first ones are stored
    frame_mark frames_mark;    // what an acquisition now records (held_lock::frames)
    // Lock segments (deferred work): edges are recorded only from held locks at or above
    // segment_base. segments[i] saves what segment i+1 replaced: the enclosing segment's base,
    // and the chain key where segment i+1 starts (before its marker), restored when it ends.
    struct saved_segment {
        unsigned base;
        std::uint64_t chain_key;
    };
    unsigned segment_base = 0;
    saved_segment segments[max_context_frames] = {};
    unsigned segment_depth = 0;
    int tid = 0;
};

// initial-exec TLS: an access is one load from the thread pointer and never calls malloc (a
// dynamic TLS access may), which matters once fencedep interposes on pthread locks.
// constinit: no dynamic initialization, so accesses need no TLS wrapper function.
[[gnu::tls_model("initial-exec")]] extern constinit thread_local int reentry_depth;
[[gnu::tls_model("initial-exec")]] extern constinit thread_local thread_state* this_thread_state;
// this_thread_state while the re-entry guard is down, null while it is raised: the fast paths
// read this one pointer instead of the guard and the state, one test less on every lock call.
[[gnu::tls_model("initial-exec")]] extern constinit thread_local thread_state* hot_thread_state;

// The re-entry guard: while it is raised, every fencedep hook on this thread returns at once, so
// that locks taken by malloc, the unwinder, libdw, fmt or a report handler are never validated.
// It lives outside thread_state because it must work before the state exists.
// Every path that does more than the hot path raises it, so it also gives the program back the
// errno it had on the way in: the symbolizer looks for files that may not exist, a log write may
// fail, and the program must not see any of that (README, "No side effects on the program").
class reentry_guard {
public:
    reentry_guard() noexcept : saved_errno_(errno) { raise(); }
    ~reentry_guard() {
        lower();
        errno = saved_errno_;
    }
    reentry_guard(const reentry_guard&) = delete;
    reentry_guard& operator=(const reentry_guard&) = delete;
    static bool raised() noexcept { return reentry_depth > 0; }

    // For a guard that spans two calls (fork's prepare and parent/child handlers).
    static void raise() noexcept {
        ++reentry_depth;
        hot_thread_state = nullptr;
    }
    static void lower() noexcept {
        if (--reentry_depth == 0)
            hot_thread_state = this_thread_state;
    }

private:
    int saved_errno_;
};

// The calling thread's state, created on first use (null if that fails or during teardown).
// Requires the re-entry guard to be raised. Once created, this_thread_state holds it.
thread_state* current_thread_state() noexcept;

// Implemented by the engine: checks a thread's held locks when the thread exits.
void on_thread_exit(thread_state& state) noexcept;

}  // namespace fencedep::detail
