// SPDX-License-Identifier: MIT
// The real pthread functions behind the interposed ones, found with dlsym(RTLD_NEXT).
#pragma once

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <type_traits>

namespace fencedep::preload {

// One real function (noexcept, so that an interposed function can tail-call it, except the
// condition waits: they are cancellation points, which unwind). Until the functions are resolved it holds a stand-in that resolves them all
// and then calls the real one, so that a call made before the preload's constructor (another
// library's constructor, the dynamic linker's own start-up) works; the hot path is one relaxed
// load and an indirect call.
template <class Function>
struct real_function {
    std::atomic<Function*> pointer;

    template <class... Args>
    int operator()(Args... args) const noexcept(std::is_nothrow_invocable_v<Function*, Args...>) {
        return pointer.load(std::memory_order_relaxed)(args...);
    }
};

struct real_functions {
    real_function<int(pthread_mutex_t*, const pthread_mutexattr_t*) noexcept> mutex_init;
    real_function<int(pthread_mutex_t*) noexcept> mutex_destroy;
    real_function<int(pthread_mutex_t*) noexcept> mutex_lock;
    real_function<int(pthread_mutex_t*) noexcept> mutex_trylock;
    real_function<int(pthread_mutex_t*, const timespec*) noexcept> mutex_timedlock;
    real_function<int(pthread_mutex_t*, clockid_t, const timespec*) noexcept> mutex_clocklock;
    real_function<int(pthread_mutex_t*) noexcept> mutex_unlock;

    real_function<int(pthread_rwlock_t*, const pthread_rwlockattr_t*) noexcept> rwlock_init;
    real_function<int(pthread_rwlock_t*) noexcept> rwlock_destroy;
    real_function<int(pthread_rwlock_t*) noexcept> rwlock_rdlock;
    real_function<int(pthread_rwlock_t*) noexcept> rwlock_tryrdlock;
    real_function<int(pthread_rwlock_t*, const timespec*) noexcept> rwlock_timedrdlock;
    real_function<int(pthread_rwlock_t*, clockid_t, const timespec*) noexcept> rwlock_clockrdlock;
    real_function<int(pthread_rwlock_t*) noexcept> rwlock_wrlock;
    real_function<int(pthread_rwlock_t*) noexcept> rwlock_trywrlock;
    real_function<int(pthread_rwlock_t*, const timespec*) noexcept> rwlock_timedwrlock;
    real_function<int(pthread_rwlock_t*, clockid_t, const timespec*) noexcept> rwlock_clockwrlock;
    real_function<int(pthread_rwlock_t*) noexcept> rwlock_unlock;

    real_function<int(pthread_spinlock_t*, int) noexcept> spin_init;
    real_function<int(pthread_spinlock_t*) noexcept> spin_destroy;
    real_function<int(pthread_spinlock_t*) noexcept> spin_lock;
    real_function<int(pthread_spinlock_t*) noexcept> spin_trylock;
    real_function<int(pthread_spinlock_t*) noexcept> spin_unlock;

    real_function<int(pthread_cond_t*, pthread_mutex_t*)> cond_wait;
    real_function<int(pthread_cond_t*, pthread_mutex_t*, const timespec*)> cond_timedwait;
    real_function<int(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*)> cond_clockwait;
};

// The real functions. Resolving them may allocate and take the loader's locks; a pthread call
// that re-enters from there on the resolving thread gets the stand-ins' answer (see real.cpp).
// Hidden, so that every access is one PC-relative load (an interposed function tail-calls through it).
[[gnu::visibility("hidden")]] extern real_functions real;

}  // namespace fencedep::preload
