// SPDX-License-Identifier: MIT
// The real pthread functions behind the interposed ones, found with dlsym(RTLD_NEXT).
#pragma once

#include <pthread.h>
#include <time.h>

#include <atomic>

namespace fencedep::preload {

// One real function. Until the functions are resolved it holds a stand-in that resolves them all
// and then calls the real one, so that a call made before the preload's constructor (another
// library's constructor, the dynamic linker's own start-up) works; the hot path is one relaxed
// load and an indirect call.
template <class Function>
struct real_function {
    std::atomic<Function*> pointer;

    template <class... Args>
    int operator()(Args... args) const noexcept {
        return pointer.load(std::memory_order_relaxed)(args...);
    }
};

struct real_functions {
    real_function<int(pthread_mutex_t*, const pthread_mutexattr_t*)> mutex_init;
    real_function<int(pthread_mutex_t*)> mutex_destroy;
    real_function<int(pthread_mutex_t*)> mutex_lock;
    real_function<int(pthread_mutex_t*)> mutex_trylock;
    real_function<int(pthread_mutex_t*, const timespec*)> mutex_timedlock;
    real_function<int(pthread_mutex_t*, clockid_t, const timespec*)> mutex_clocklock;
    real_function<int(pthread_mutex_t*)> mutex_unlock;

    real_function<int(pthread_rwlock_t*, const pthread_rwlockattr_t*)> rwlock_init;
    real_function<int(pthread_rwlock_t*)> rwlock_destroy;
    real_function<int(pthread_rwlock_t*)> rwlock_rdlock;
    real_function<int(pthread_rwlock_t*)> rwlock_tryrdlock;
    real_function<int(pthread_rwlock_t*, const timespec*)> rwlock_timedrdlock;
    real_function<int(pthread_rwlock_t*, clockid_t, const timespec*)> rwlock_clockrdlock;
    real_function<int(pthread_rwlock_t*)> rwlock_wrlock;
    real_function<int(pthread_rwlock_t*)> rwlock_trywrlock;
    real_function<int(pthread_rwlock_t*, const timespec*)> rwlock_timedwrlock;
    real_function<int(pthread_rwlock_t*, clockid_t, const timespec*)> rwlock_clockwrlock;
    real_function<int(pthread_rwlock_t*)> rwlock_unlock;

    real_function<int(pthread_spinlock_t*, int)> spin_init;
    real_function<int(pthread_spinlock_t*)> spin_destroy;
    real_function<int(pthread_spinlock_t*)> spin_lock;
    real_function<int(pthread_spinlock_t*)> spin_trylock;
    real_function<int(pthread_spinlock_t*)> spin_unlock;

    real_function<int(pthread_cond_t*, pthread_mutex_t*)> cond_wait;
    real_function<int(pthread_cond_t*, pthread_mutex_t*, const timespec*)> cond_timedwait;
    real_function<int(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*)> cond_clockwait;
};

// The real functions. Resolving them may allocate and take the loader's locks; a pthread call
// that re-enters from there on the resolving thread gets the stand-ins' answer (see real.cpp).
extern real_functions real;

}  // namespace fencedep::preload
