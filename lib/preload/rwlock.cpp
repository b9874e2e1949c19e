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
    const void* ip = __builtin_return_address(0);
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_rdlock(lock); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_tryrdlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_tryrdlock(lock);
    const void* ip = __builtin_return_address(0);
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_tryrdlock(lock); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_timedrdlock(pthread_rwlock_t* lock, const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_timedrdlock(lock, deadline);
    const void* ip = __builtin_return_address(0);
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_timedrdlock(lock, deadline); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_clockrdlock(pthread_rwlock_t* lock, clockid_t clock,
                                                   const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_clockrdlock(lock, clock, deadline);
    const void* ip = __builtin_return_address(0);
    return trying(state_for(lock, lock_kind::rwlock, ip), ip,
                  [&] { return real.rwlock_clockrdlock(lock, clock, deadline); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_wrlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_wrlock(lock);
    const void* ip = __builtin_return_address(0);
    return blocking(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_wrlock(lock); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_trywrlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_trywrlock(lock);
    const void* ip = __builtin_return_address(0);
    return trying(state_for(lock, lock_kind::rwlock, ip), ip, [&] { return real.rwlock_trywrlock(lock); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_timedwrlock(pthread_rwlock_t* lock, const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_timedwrlock(lock, deadline);
    const void* ip = __builtin_return_address(0);
    return timed(state_for(lock, lock_kind::rwlock, ip), ip, CLOCK_REALTIME, deadline,
                 [&] { return real.rwlock_timedwrlock(lock, deadline); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_clockwrlock(pthread_rwlock_t* lock, clockid_t clock,
                                                   const timespec* deadline) noexcept {
    if (!enabled())
        return real.rwlock_clockwrlock(lock, clock, deadline);
    const void* ip = __builtin_return_address(0);
    return timed(state_for(lock, lock_kind::rwlock, ip), ip, clock, deadline,
                 [&] { return real.rwlock_clockwrlock(lock, clock, deadline); });
}

FENCEDEP_INTERPOSED int pthread_rwlock_unlock(pthread_rwlock_t* lock) noexcept {
    if (!enabled())
        return real.rwlock_unlock(lock);
    return unlocking(find_lock(lock, lock_kind::rwlock), __builtin_return_address(0),
                     [&] { return real.rwlock_unlock(lock); });
}
