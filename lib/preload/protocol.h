// SPDX-License-Identifier: MIT
// How an interposed lock call reaches the validator around the real call. Every step keeps the
// program's errno, and the real call's result is what the program gets.
#pragma once

#include <errno.h>
#include <time.h>

#include "preload/locks.h"

// The interposed functions are the library's only exports.
#define FENCEDEP_INTERPOSED extern "C" [[gnu::visibility("default")]]

namespace fencedep::preload {

// errno's address, asked for once per thread, so that keeping errno costs no call.
[[gnu::tls_model("initial-exec")]] inline constinit thread_local int* errno_address = nullptr;

class errno_kept {
public:
    errno_kept() noexcept : where_(errno_address ? errno_address : (errno_address = &errno)), saved_(*where_) {}
    ~errno_kept() { *where_ = saved_; }
    errno_kept(const errno_kept&) = delete;
    errno_kept& operator=(const errno_kept&) = delete;

private:
    int* where_;
    int saved_;
};

// EOWNERDEAD: a robust mutex whose owner died is taken all the same.
inline bool acquired(int result) noexcept {
    return result == 0 || result == EOWNERDEAD;
}

// The records need no errno_kept: the engine's fast path touches no errno, and every slow path
// raises the re-entry guard, which gives errno back (lib/engine/thread_state.h).
// `how`: a writer, or a read lock's kind of reader (fencedep::lock_kind, not the preload's kind
// of lock object).
[[gnu::always_inline]] inline void record_acquire(lock_state& state, const void* ip, bool trylock,
                                                  fencedep::lock_kind how = fencedep::lock_kind::write) noexcept {
    state.map().acquire(
        lock_map::acquisition{.subclass = 0, .trylock = trylock, .kind = how, .ip = ip, .outer_ip = nullptr});
}

[[gnu::always_inline]] inline void record_release(lock_state& state, const void* ip) noexcept {
    state.map().release(ip);
}

// A lock seen before is found without touching errno; a new one may allocate and symbolize.
[[gnu::always_inline]] inline lock_state* state_for(const void* object, lock_kind kind, const void* ip) noexcept {
    if (lock_state* state = find_lock(object, kind))
        return state;
    const errno_kept kept;
    return new_lock(object, kind, ip);
}

// The steps below are always inlined: they are the whole of an interposed function's validated
// half, whose cost is the point of the preload's benchmark.

// A call that may block: validated before it can, undone (without a report) if it fails.
template <class Call>
[[gnu::always_inline]] inline int blocking(lock_state* state, const void* ip, Call call,
                                           fencedep::lock_kind how = fencedep::lock_kind::write) noexcept {
    if (!state)
        return call();
    record_acquire(*state, ip, false, how);
    const int result = call();
    if (!acquired(result))
        record_release(*state, ip);
    return result;
}

// A call that cannot block: recorded as a trylock once it succeeded.
template <class Call>
[[gnu::always_inline]] inline int trying(lock_state* state, const void* ip, Call call,
                                         fencedep::lock_kind how = fencedep::lock_kind::write) noexcept {
    const int result = call();
    if (state && acquired(result))
        record_acquire(*state, ip, true, how);
    return result;
}

// Whether `deadline` on `clock` is still ahead: a timed lock whose deadline has passed cannot
// wait, so it is a trylock.
inline bool ahead(clockid_t clock, const timespec* deadline) noexcept {
    const errno_kept kept;
    timespec now;
    if (clock_gettime(clock, &now) != 0)
        return true;
    return deadline->tv_sec > now.tv_sec || (deadline->tv_sec == now.tv_sec && deadline->tv_nsec > now.tv_nsec);
}

template <class Call>
int timed(lock_state* state, const void* ip, clockid_t clock, const timespec* deadline, Call call,
          fencedep::lock_kind how = fencedep::lock_kind::write) noexcept {
    return ahead(clock, deadline) ? blocking(state, ip, call, how) : trying(state, ip, call, how);
}

template <class Call>
[[gnu::always_inline]] inline int unlocking(lock_state* state, const void* ip, Call call) noexcept {
    if (state)
        record_release(*state, ip);
    return call();
}

// pthread_*_init: the lock's class is the init call's site.
template <class Call>
int initializing(const void* object, lock_kind kind, const void* ip, Call call) noexcept {
    const int result = call();
    if (result == 0 && enabled()) {
        const errno_kept kept;
        lock_initialized(object, kind, ip);
    }
    return result;
}

template <class Call>
int destroying(const void* object, Call call) noexcept {
    const int result = call();
    if (result == 0 && enabled()) {
        const errno_kept kept;
        lock_destroyed(object);
    }
    return result;
}

}  // namespace fencedep::preload
