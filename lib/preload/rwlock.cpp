// SPDX-License-Identifier: MIT
// Interposed pthread read-write locks (std::shared_mutex, std::shared_timed_mutex).
//
// Writers are exclusive acquisitions, validated like mutexes. Readers are validated as readers
// (lockdep.md §1.7), of the kind the lock's glibc kind makes them: see readers_of.
#include <pthread.h>

#include "preload/protocol.h"
#include "preload/real.h"

namespace fencedep::preload {
namespace {

// How a read lock holds `lock`. glibc's rwlocks prefer readers by default: a new reader passes
// waiting writers and waits only for a writer that holds the lock, so a reader never waits for a
// reader, and readers are recursive readers (POSIX requires that a thread may take a read lock it
// holds again, which is why glibc treats PTHREAD_RWLOCK_PREFER_WRITER_NP as reader-preferring
// too). Only PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP makes a new reader queue behind a
// waiting writer: its readers are non-recursive, and one reading such a lock twice can deadlock.
// The kind is set at initialization (or by the static initializer) and never changes.
fencedep::lock_kind readers_of(const pthread_rwlock_t* lock) noexcept {
    return __atomic_load_n(&lock->__data.__flags, __ATOMIC_RELAXED) == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
               ? fencedep::lock_kind::read
               : fencedep::lock_kind::recursive_read;
}

// The validated halves, out of line (see mutex.cpp).
[[gnu::noinline]] int rwlock_rdlock_validated(pthread_rwlock_t* lock, const void* ip) noexcept {
    return blocking(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_rdlock(lock); },
                    readers_of(lock));
}

[[gnu::noinline]] int rwlock_tryrdlock_validated(pthread_rwlock_t* lock, const void* ip) noexcept {
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_tryrdlock(lock); },
                  readers_of(lock));
}

[[gnu::noinline]] int rwlock_timedrdlock_validated(pthread_rwlock_t* lock, const timespec* deadline, const void* ip) noexcept {
    return timed(state_for(lock, lock_kind::rwlock, ip), ip, CLOCK_REALTIME, deadline,
                 [&] { return real.rwlock_timedrdlock(lock, deadline); }, readers_of(lock));
}

[[gnu::noinline]] int rwlock_clockrdlock_validated(pthread_rwlock_t* lock, clockid_t clock,
                                                   const timespec* deadline, const void* ip) noexcept {
    return timed(state_for(lock, lock_kind::rwlock, ip), ip, clock, deadline,
                 [&] { return real.rwlock_clockrdlock(lock, clock, deadline); }, readers_of(lock));
}

[[gnu::noinline]] int rwlock_wrlock_validated(pthread_rwlock_t* lock, const void* ip) noexcept {
    return blocking(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_wrlock(lock); });
}

[[gnu::noinline]] int rwlock_trywrlock_validated(pthread_rwlock_t* lock, const void* ip) noexcept {
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_trywrlock(lock); });
}

[[gnu::noinline]] int rwlock_timedwrlock_validated(pthread_rwlock_t* lock, const timespec* deadline, const void* ip) noexcept {
    return timed(state_for(lock, lock_kind::rwlock, ip), ip, CLOCK_REALTIME, deadline,
                 [&] { return real.rwlock_timedwrlock(lock, deadline); });
}

[[gnu::noinline]] int rwlock_clockwrlock_validated(pthread_rwlock_t* lock, clockid_t clock,
                                                   const timespec* deadline, const void* ip) noexcept {
    return timed(state_for(lock, lock_kind::rwlock, ip), ip, clock, deadline,
                 [&] { return real.rwlock_clockwrlock(lock, clock, deadline); });
}

[[gnu::noinline]] int rwlock_unlock_validated(pthread_rwlock_t* lock, const void* ip) noexcept {
    return unlocking(find_lock(lock, lock_kind::rwlock), ip,
                     [&] { return real.rwlock_unlock(lock); });
}

}  // namespace
}  // namespace fencedep::preload

using namespace fencedep::preload;
using fencedep::enabled;

FENCEDEP_INTERPOSED int pthread_rwlock_init(pthread_rwlock_t* lock, const pthread_rwlockattr_t* attributes) noexcept {
    return initializing(lock, lock_kind::rwlock, __builtin_return_address(0),
                        [&] { return real.rwlock_init(lock, attributes); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_destroy(pthread_rwlock_t* lock) noexcept {
    return destroying(lock, [&] { return real.rwlock_destroy(lock); });
}

FENCEDEP_ROUTED(pthread_rwlock_rdlock, rwlock_rdlock, (pthread_rwlock_t* lock))
int fencedep_checked_pthread_rwlock_rdlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_rdlock(lock);
    return rwlock_rdlock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_rwlock_tryrdlock, rwlock_tryrdlock, (pthread_rwlock_t* lock))
int fencedep_checked_pthread_rwlock_tryrdlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_tryrdlock(lock);
    return rwlock_tryrdlock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_rwlock_timedrdlock(pthread_rwlock_t* lock, const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_timedrdlock(lock, deadline);
    return rwlock_timedrdlock_validated(lock, deadline, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_rwlock_clockrdlock(pthread_rwlock_t* lock, clockid_t clock,
                                                   const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_clockrdlock(lock, clock, deadline);
    return rwlock_clockrdlock_validated(lock, clock, deadline, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_rwlock_wrlock, rwlock_wrlock, (pthread_rwlock_t* lock))
int fencedep_checked_pthread_rwlock_wrlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_wrlock(lock);
    return rwlock_wrlock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_rwlock_trywrlock, rwlock_trywrlock, (pthread_rwlock_t* lock))
int fencedep_checked_pthread_rwlock_trywrlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_trywrlock(lock);
    return rwlock_trywrlock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_rwlock_timedwrlock(pthread_rwlock_t* lock, const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_timedwrlock(lock, deadline);
    return rwlock_timedwrlock_validated(lock, deadline, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_rwlock_clockwrlock(pthread_rwlock_t* lock, clockid_t clock,
                                                   const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_clockwrlock(lock, clock, deadline);
    return rwlock_clockwrlock_validated(lock, clock, deadline, __builtin_return_address(0));
}

FENCEDEP_ROUTED(pthread_rwlock_unlock, rwlock_unlock, (pthread_rwlock_t* lock))
int fencedep_checked_pthread_rwlock_unlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_unlock(lock);
    return rwlock_unlock_validated(lock, __builtin_return_address(0));
}

void fencedep::preload::follow_rwlock_routes(bool direct) noexcept {
    follow_pthread_rwlock_rdlock(direct);
    follow_pthread_rwlock_tryrdlock(direct);
    follow_pthread_rwlock_wrlock(direct);
    follow_pthread_rwlock_trywrlock(direct);
    follow_pthread_rwlock_unlock(direct);
}
