// SPDX-License-Identifier: MIT
// Interposed pthread read-write locks (std::shared_mutex, std::shared_timed_mutex).
//
// Writers are exclusive acquisitions, validated like mutexes. Until the engine has lockdep's
// read/write rules, a read acquisition is recorded as a trylock: it is held (locks taken under
// it get dependencies from it, which a writer waiting behind the reader makes real) but it is not
// validated, because two readers of one lock in opposite orders with another lock do not
// deadlock under glibc's default reader preference. Read-side cycles go unreported until then.
#include <pthread.h>

#include "preload/protocol.h"
#include "preload/real.h"

namespace fencedep::preload {
namespace {

// The validated halves, out of line (see mutex.cpp).
[[gnu::noinline]] int rwlock_rdlock_validated(pthread_rwlock_t* lock, const void* ip) noexcept {
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_rdlock(lock); });
}

[[gnu::noinline]] int rwlock_tryrdlock_validated(pthread_rwlock_t* lock, const void* ip) noexcept {
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_tryrdlock(lock); });
}

[[gnu::noinline]] int rwlock_timedrdlock_validated(pthread_rwlock_t* lock, const timespec* deadline, const void* ip) noexcept {
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_timedrdlock(lock, deadline); });
}

[[gnu::noinline]] int rwlock_clockrdlock_validated(pthread_rwlock_t* lock, clockid_t clock,
                                                   const timespec* deadline, const void* ip) noexcept {
    return trying(state_for(lock, lock_kind::rwlock, ip), ip,
                  [&] { return real.rwlock_clockrdlock(lock, clock, deadline); });
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

FENCEDEP_INTERPOSED int pthread_rwlock_rdlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_rdlock(lock);
    return rwlock_rdlock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_rwlock_tryrdlock(pthread_rwlock_t* lock) noexcept {
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

FENCEDEP_INTERPOSED int pthread_rwlock_wrlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_wrlock(lock);
    return rwlock_wrlock_validated(lock, __builtin_return_address(0));
}

FENCEDEP_INTERPOSED int pthread_rwlock_trywrlock(pthread_rwlock_t* lock) noexcept {
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

FENCEDEP_INTERPOSED int pthread_rwlock_unlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_unlock(lock);
    return rwlock_unlock_validated(lock, __builtin_return_address(0));
}
