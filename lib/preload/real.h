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

// --- Routes: validation off costs the program one jump ------------------------------------------
//
// A hot interposed function (a lock or unlock of a mutex, rwlock or spinlock) is a stub that
// jumps through its route: to the real function while validation is off, to its checked entry
// (the gate test, then the validated path) while it is on. update_routes() makes the routes
// follow the gate; the engine calls it after every change (shim::on_gate_change). A call that
// races with a change takes either, and the checked entry tests the gate itself, so a route only
// decides how fast a call is, never whether it is validated.
// The stub is assembler so that the jump is a tail jump in every build (-O0, sanitizers): the
// checked entry's return address is then the program's call site, which names the lock's class.
// Elsewhere than x86-64 the interposed function is an alias of the checked entry.
//
// FENCEDEP_ROUTED(name, member, parameters) declares the checked entry,
// `extern "C" int fencedep_checked_<name> parameters`, which must follow it, and defines the
// interposed function `name` and follow_<name>(direct).
#if defined(__x86_64__)
#define FENCEDEP_ROUTED(name, member, parameters)                                                       \
    extern "C" [[gnu::visibility("hidden")]] int fencedep_checked_##name parameters noexcept;          \
    extern "C" {                                                                                        \
    [[gnu::visibility("hidden")]] constinit std::atomic<decltype(&fencedep_checked_##name)>            \
        fencedep_route_##name{&fencedep_checked_##name};                                                \
    }                                                                                                   \
    asm(".text\n\t.globl " #name "\n\t.type " #name ", @function\n" #name                               \
        ":\n\tjmp *fencedep_route_" #name "(%rip)\n\t.size " #name ", .-" #name "\n");                  \
    static void follow_##name(bool direct) noexcept {                                                   \
        fencedep_route_##name.store(                                                                   \
            direct ? real.member.pointer.load(std::memory_order_relaxed) : &fencedep_checked_##name,   \
            std::memory_order_relaxed);                                                                 \
    }
#else
#define FENCEDEP_ROUTED(name, member, parameters)                                                       \
    extern "C" [[gnu::visibility("hidden")]] int fencedep_checked_##name parameters noexcept;          \
    extern "C" [[gnu::visibility("default"), gnu::alias("fencedep_checked_" #name)]] int name parameters noexcept; \
    static void follow_##name(bool) noexcept {}
#endif

// Points every route at the real functions while validation is off and at the checked entries
// while it is on. Serialized, and reads the gate itself, so that the last call leaves the routes
// as the gate is.
void update_routes() noexcept;
// Each file's routes (mutex.cpp, rwlock.cpp).
void follow_mutex_routes(bool direct) noexcept;
void follow_rwlock_routes(bool direct) noexcept;

}  // namespace fencedep::preload
