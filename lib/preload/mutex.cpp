// SPDX-License-Identifier: MIT
// Interposed pthread mutexes (every type), spinlocks and condition variable waits.
//
// A recursive mutex taken again by its owner is counted, not validated, and only the outermost
// unlock reaches the validator, as lockdep treats recursive read locks. An errorcheck mutex
// relocked by its owner is validated like any other lock (a recursive-locking report) before
// glibc answers EDEADLK; the answer is the program's. A condition variable wait releases the
// mutex in the validator before it waits and takes it again after: the wait itself is no lock.
#include <pthread.h>

#include "preload/protocol.h"
#include "preload/real.h"

namespace fencedep::preload {
namespace {

bool recursive(const pthread_mutex_t* mutex) noexcept {
    // glibc keeps the type in the low bits of __kind (its PTHREAD_MUTEX_KIND_MASK_NP), also for
    // a statically initialized mutex (PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP, std::recursive_mutex).
    return (__atomic_load_n(&mutex->__data.__kind, __ATOMIC_RELAXED) & 3) == PTHREAD_MUTEX_RECURSIVE;
}

bool owned_here(const lock_state& state) noexcept {
    return state.owner.load(std::memory_order_relaxed) == pthread_self();
}

// The mutex is held again when a wait returns, and also when a cancelled wait unwinds: glibc
// retakes it before the cancellation handlers run, which usually unlock it. A C handler is reached
// by a longjmp over the interposer's frame, so no destructor there can tell the validator; the
// retake is left pending for the thread instead, and recorded before its next mutex operation.
struct pending_retake {
    lock_state* state;
    const void* ip;
    bool owner;
};
[[gnu::tls_model("initial-exec")]] constinit thread_local pending_retake retake_pending{nullptr, nullptr, false};

// Out of line: the common path only tests whether a retake is pending.
[[gnu::noinline, gnu::cold]] void retake_now() noexcept {
    const pending_retake retake = retake_pending;
    retake_pending.state = nullptr;
    record_acquire(*retake.state, retake.ip, false);
    if (retake.owner)
        retake.state->owner.store(pthread_self(), std::memory_order_relaxed);
}

void settle_pending_retake() noexcept {
    if (retake_pending.state)
        retake_now();
}

// `take(state)` makes the real call, validated through `state` (null: not validated).
template <class Take>
int take_mutex(pthread_mutex_t* mutex, const void* ip, Take take) noexcept {
    settle_pending_retake();
    lock_state* state = state_for(mutex, lock_kind::mutex, ip);
    if (!state || !recursive(mutex))
        return take(state);
    if (owned_here(*state)) {
        const int result = take(nullptr);
        if (acquired(result))
            ++state->relocks;
        return result;
    }
    const int result = take(state);
    if (acquired(result)) {
        state->relocks = 0;
        state->owner.store(pthread_self(), std::memory_order_relaxed);
    }
    return result;
}

// Not noexcept: a wait is a cancellation point, and cancelling a thread unwinds through it.
template <class Wait>
int wait_with(pthread_mutex_t* mutex, const void* ip, Wait wait) {
    settle_pending_retake();
    lock_state* state = find_lock(mutex, lock_kind::mutex);
    // glibc releases a recursive mutex relocked by its owner only once: the wait keeps it held.
    if (!state || (recursive(mutex) && state->relocks > 0))
        return wait();
    const bool owner = recursive(mutex) && owned_here(*state);
    if (owner)
        state->owner.store(0, std::memory_order_relaxed);
    record_release(*state, ip);
    retake_pending = {state, ip, owner};
    const int result = wait();
    retake_now();
    return result;
}

// A known mutex that is not recursive, with no retake pending: the common case of a lock or
// unlock, kept apart from the others (new locks, recursive owners, retakes) so that it needs no
// registers beyond the two it keeps across the real call. Null otherwise.
[[gnu::always_inline]] inline lock_state* plain_known_mutex(pthread_mutex_t* mutex) noexcept {
    if (retake_pending.state)
        return nullptr;
    lock_state* state = find_lock(mutex, lock_kind::mutex);
    return state && !recursive(mutex) ? state : nullptr;
}

// The validated halves of the interposed functions, out of line so that with validation off an
// interposed function is a test and a jump to the real one.
[[gnu::noinline]] int mutex_lock_any(pthread_mutex_t* mutex, const void* ip) noexcept {
    return take_mutex(mutex, ip,
                      [&](lock_state* state) { return blocking(state, ip, [&] { return real.mutex_lock(mutex); }); });
}

// A lock refused after it was recorded (an errorcheck mutex relocked, EDEADLK): the record goes.
[[gnu::noinline, gnu::cold]] int mutex_lock_refused(pthread_mutex_t* mutex, const void* ip, int result) noexcept {
    if (lock_state* state = find_lock(mutex, lock_kind::mutex))
        record_release(*state, ip);
    return result;
}

[[gnu::noinline]] int mutex_lock_validated(pthread_mutex_t* mutex, const void* ip) noexcept {
    lock_state* const state = plain_known_mutex(mutex);
    if (!state) [[unlikely]]
        return mutex_lock_any(mutex, ip);
    record_acquire(*state, ip, false);
    const int result = real.mutex_lock(mutex);
    if (!acquired(result)) [[unlikely]]
        return mutex_lock_refused(mutex, ip, result);
    return result;
}

[[gnu::noinline]] int mutex_trylock_validated(pthread_mutex_t* mutex, const void* ip) noexcept {
    return take_mutex(mutex, ip,
                      [&](lock_state* state) { return trying(state, ip, [&] { return real.mutex_trylock(mutex); }); });
}

[[gnu::noinline]] int mutex_timedlock_validated(pthread_mutex_t* mutex, const timespec* deadline, const void* ip) noexcept {
    return take_mutex(mutex, ip, [&](lock_state* state) {
        return timed(state, ip, CLOCK_REALTIME, deadline, [&] { return real.mutex_timedlock(mutex, deadline); });
    });
}

[[gnu::noinline]] int mutex_clocklock_validated(pthread_mutex_t* mutex, clockid_t clock,
                                                const timespec* deadline, const void* ip) noexcept {
    return take_mutex(mutex, ip, [&](lock_state* state) {
        return timed(state, ip, clock, deadline, [&] { return real.mutex_clocklock(mutex, clock, deadline); });
    });
}

[[gnu::noinline]] int mutex_unlock_any(pthread_mutex_t* mutex, const void* ip) noexcept {
    settle_pending_retake();
    lock_state* state = find_lock(mutex, lock_kind::mutex);
    if (state && recursive(mutex) && owned_here(*state)) {
        if (state->relocks > 0) {
            --state->relocks;
            return real.mutex_unlock(mutex);
        }
        state->owner.store(0, std::memory_order_relaxed);
    }
    return unlocking(state, ip, [&] { return real.mutex_unlock(mutex); });
}

[[gnu::noinline]] int mutex_unlock_validated(pthread_mutex_t* mutex, const void* ip) noexcept {
    lock_state* const state = plain_known_mutex(mutex);
    if (!state) [[unlikely]]
        return mutex_unlock_any(mutex, ip);
    record_release(*state, ip);
    return real.mutex_unlock(mutex);
}

[[gnu::noinline]] int spin_lock_validated(pthread_spinlock_t* lock, const void* ip) noexcept {
    return blocking(state_for(const_cast<int*>(lock), lock_kind::spinlock, ip), ip,
                    [&] { return real.spin_lock(lock); });
}

[[gnu::noinline]] int spin_trylock_validated(pthread_spinlock_t* lock, const void* ip) noexcept {
    return trying(state_for(const_cast<int*>(lock), lock_kind::spinlock, ip), ip,
                  [&] { return real.spin_trylock(lock); });
}

[[gnu::noinline]] int spin_unlock_validated(pthread_spinlock_t* lock, const void* ip) noexcept {
    return unlocking(find_lock(const_cast<int*>(lock), lock_kind::spinlock), ip,
                     [&] { return real.spin_unlock(lock); });
}

[[gnu::noinline]] int cond_wait_validated(pthread_cond_t* condition, pthread_mutex_t* mutex, const void* ip) {
    return wait_with(mutex, ip, [&] { return real.cond_wait(condition, mutex); });
}

[[gnu::noinline]] int cond_timedwait_validated(pthread_cond_t* condition, pthread_mutex_t* mutex,
                                               const timespec* deadline, const void* ip) {
    return wait_with(mutex, ip,
                     [&] { return real.cond_timedwait(condition, mutex, deadline); });
}

[[gnu::noinline]] int cond_clockwait_validated(pthread_cond_t* condition, pthread_mutex_t* mutex, clockid_t clock,
                                               const timespec* deadline, const void* ip) {
    return wait_with(mutex, ip,
                     [&] { return real.cond_clockwait(condition, mutex, clock, deadline); });
}

}  // namespace
}  // namespace fencedep::preload

using namespace fencedep::preload;
using fencedep::enabled;

FENCEDEP_INTERPOSED int pthread_mutex_init(pthread_mutex_t* mutex, const pthread_mutexattr_t* attributes) noexcept {
    return initializing(mutex, lock_kind::mutex, __builtin_return_address(0),
                        [&] { return real.mutex_init(mutex, attributes); });
}

FENCEDEP_INTERPOSED int pthread_mutex_destroy(pthread_mutex_t* mutex) noexcept {
    return destroying(mutex, [&] { return real.mutex_destroy(mutex); });
}

FENCEDEP_ROUTED(pthread_mutex_lock, mutex_lock, (pthread_mutex_t* mutex))
int fencedep_checked_pthread_mutex_lock(pthread_mutex_t* mutex) noexcept {
    if (!enabled())
        return real.mutex_lock(mutex);
    return mutex_lock_validated(mutex, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_mutex_trylock, mutex_trylock, (pthread_mutex_t* mutex))
int fencedep_checked_pthread_mutex_trylock(pthread_mutex_t* mutex) noexcept {
    if (!enabled())
        return real.mutex_trylock(mutex);
    return mutex_trylock_validated(mutex, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_mutex_timedlock(pthread_mutex_t* mutex, const timespec* deadline) noexcept {
    if (!enabled())
        return real.mutex_timedlock(mutex, deadline);
    return mutex_timedlock_validated(mutex, deadline, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_mutex_clocklock(pthread_mutex_t* mutex, clockid_t clock,
                                                const timespec* deadline) noexcept {
    if (!enabled())
        return real.mutex_clocklock(mutex, clock, deadline);
    return mutex_clocklock_validated(mutex, clock, deadline, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_mutex_unlock, mutex_unlock, (pthread_mutex_t* mutex))
int fencedep_checked_pthread_mutex_unlock(pthread_mutex_t* mutex) noexcept {
    if (!enabled())
        return real.mutex_unlock(mutex);
    return mutex_unlock_validated(mutex, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_spin_init(pthread_spinlock_t* lock, int shared) noexcept {
    return initializing(const_cast<int*>(lock), lock_kind::spinlock, __builtin_return_address(0),
                        [&] { return real.spin_init(lock, shared); });
}

FENCEDEP_INTERPOSED int pthread_spin_destroy(pthread_spinlock_t* lock) noexcept {
    return destroying(const_cast<int*>(lock), [&] { return real.spin_destroy(lock); });
}

FENCEDEP_ROUTED(pthread_spin_lock, spin_lock, (pthread_spinlock_t* lock))
int fencedep_checked_pthread_spin_lock(pthread_spinlock_t* lock) noexcept {
    if (!enabled())
        return real.spin_lock(lock);
    return spin_lock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_spin_trylock, spin_trylock, (pthread_spinlock_t* lock))
int fencedep_checked_pthread_spin_trylock(pthread_spinlock_t* lock) noexcept {
    if (!enabled())
        return real.spin_trylock(lock);
    return spin_trylock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_spin_unlock, spin_unlock, (pthread_spinlock_t* lock))
int fencedep_checked_pthread_spin_unlock(pthread_spinlock_t* lock) noexcept {
    if (!enabled())
        return real.spin_unlock(lock);
    return spin_unlock_validated(lock, __builtin_return_address(0));
}

// The waits are cancellation points: glibc declares them without __THROW, and so do these.
FENCEDEP_INTERPOSED int pthread_cond_wait(pthread_cond_t* condition, pthread_mutex_t* mutex) {
    if (!enabled())
        return real.cond_wait(condition, mutex);
    return cond_wait_validated(condition, mutex, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_cond_timedwait(pthread_cond_t* condition, pthread_mutex_t* mutex,
                                               const timespec* deadline) {
    if (!enabled())
        return real.cond_timedwait(condition, mutex, deadline);
    return cond_timedwait_validated(condition, mutex, deadline, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_cond_clockwait(pthread_cond_t* condition, pthread_mutex_t* mutex, clockid_t clock,
                                               const timespec* deadline) {
    if (!enabled())
        return real.cond_clockwait(condition, mutex, clock, deadline);
    return cond_clockwait_validated(condition, mutex, clock, deadline, __builtin_return_address(0));
}

void fencedep::preload::follow_mutex_routes(bool direct) noexcept {
    follow_pthread_mutex_lock(direct);
    follow_pthread_mutex_trylock(direct);
    follow_pthread_mutex_unlock(direct);
    follow_pthread_spin_lock(direct);
    follow_pthread_spin_trylock(direct);
    follow_pthread_spin_unlock(direct);
}
