// SPDX-License-Identifier: MIT
// Resolving the real pthread functions, safely before main and from inside dlsym.
//
// dlsym may allocate (its error state) and the allocator may lock through pthread_mutex_lock,
// which is ours: so while one thread resolves, a call that re-enters on that thread cannot wait
// for the answer. It gets a stand-in's: success, doing nothing (an init zeroes the object, which
// is the static initializer of every kind). That is safe because every other thread that calls
// an interposed function meanwhile waits in resolve_all(), so a lock taken and released inside
// the allocator during dlsym has nobody to exclude.
#include "preload/real.h"

#include <fencedep/shim.h>

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <string_view>
#include <type_traits>

namespace fencedep::preload {

namespace {

enum : int { unresolved, resolving, resolved };
std::atomic<int> state{unresolved};
[[gnu::tls_model("initial-exec")]] constinit thread_local bool resolving_here = false;

[[noreturn]] void missing(const char* name) {
    const char* why = dlerror();
    const std::string_view parts[] = {"fencedep-run: cannot find the real ", name, " (", why ? why : "not found",
                                      ")\n"};
    for (const std::string_view part : parts)
        [[maybe_unused]] const auto written = write(STDERR_FILENO, part.data(), part.size());
    _exit(127);
}

template <class Function>
void find(real_function<Function>& slot, const char* name, const char* version = nullptr) {
    void* address = version ? dlvsym(RTLD_NEXT, name, version) : nullptr;
    if (!address)
        address = dlsym(RTLD_NEXT, name);
    if (!address)
        missing(name);
    slot.pointer.store(reinterpret_cast<Function*>(address), std::memory_order_relaxed);
}

void resolve_all() noexcept {
    int expected = unresolved;
    if (!state.compare_exchange_strong(expected, resolving, std::memory_order_acq_rel)) {
        while (state.load(std::memory_order_acquire) != resolved)
            sched_yield();
        return;
    }
    resolving_here = true;
    find(real.mutex_init, "pthread_mutex_init");
    find(real.mutex_destroy, "pthread_mutex_destroy");
    find(real.mutex_lock, "pthread_mutex_lock");
    find(real.mutex_trylock, "pthread_mutex_trylock");
    find(real.mutex_timedlock, "pthread_mutex_timedlock");
    find(real.mutex_clocklock, "pthread_mutex_clocklock");
    find(real.mutex_unlock, "pthread_mutex_unlock");
    find(real.rwlock_init, "pthread_rwlock_init");
    find(real.rwlock_destroy, "pthread_rwlock_destroy");
    find(real.rwlock_rdlock, "pthread_rwlock_rdlock");
    find(real.rwlock_tryrdlock, "pthread_rwlock_tryrdlock");
    find(real.rwlock_timedrdlock, "pthread_rwlock_timedrdlock");
    find(real.rwlock_clockrdlock, "pthread_rwlock_clockrdlock");
    find(real.rwlock_wrlock, "pthread_rwlock_wrlock");
    find(real.rwlock_trywrlock, "pthread_rwlock_trywrlock");
    find(real.rwlock_timedwrlock, "pthread_rwlock_timedwrlock");
    find(real.rwlock_clockwrlock, "pthread_rwlock_clockwrlock");
    find(real.rwlock_unlock, "pthread_rwlock_unlock");
    find(real.spin_init, "pthread_spin_init");
    find(real.spin_destroy, "pthread_spin_destroy");
    find(real.spin_lock, "pthread_spin_lock");
    find(real.spin_trylock, "pthread_spin_trylock");
    find(real.spin_unlock, "pthread_spin_unlock");
    // glibc keeps the condition variables of before 2.3.2 under the plain name's oldest version,
    // which an unversioned dlsym may return; programs built since use the 2.3.2 ones.
    find(real.cond_wait, "pthread_cond_wait", "GLIBC_2.3.2");
    find(real.cond_timedwait, "pthread_cond_timedwait", "GLIBC_2.3.2");
    find(real.cond_clockwait, "pthread_cond_clockwait");
    resolving_here = false;
    state.store(resolved, std::memory_order_release);
    update_routes();
}

template <class Slot>
struct function_of;
template <class Function>
struct function_of<real_function<Function> real_functions::*> {
    using type = Function;
};

template <auto Member>
constexpr bool initializes = false;
template <>
constexpr bool initializes<&real_functions::mutex_init> = true;
template <>
constexpr bool initializes<&real_functions::rwlock_init> = true;
template <>
constexpr bool initializes<&real_functions::spin_init> = true;

template <auto Member, class Function>
struct stand_in;
template <auto Member, class Object, class... Rest>
struct stand_in<Member, int(Object*, Rest...) noexcept> {
    static int call(Object* object, Rest... rest) noexcept {
        if (resolving_here) {
            if constexpr (initializes<Member>)
                std::memset(const_cast<std::remove_cv_t<Object>*>(object), 0, sizeof *object);
            return 0;
        }
        resolve_all();
        return (real.*Member)(object, rest...);
    }
};

template <auto Member, class Object, class... Rest>
struct stand_in<Member, int(Object*, Rest...)> : stand_in<Member, int(Object*, Rest...) noexcept> {};

template <auto Member>
constexpr auto stand_in_for = &stand_in<Member, typename function_of<decltype(Member)>::type>::call;

[[gnu::constructor]] void resolve_at_load() {
    shim::on_gate_change(update_routes);
    resolve_all();
    update_routes();  // the engine's constructor, which ran first, may have switched it on
}

}  // namespace

void update_routes() noexcept {
    // A raw spinlock: a pthread lock here would come back to the interposer.
    static std::atomic<bool> busy{false};
    while (busy.exchange(true, std::memory_order_acquire))
        sched_yield();
    // Before the real functions are found, a route to one would be a route to its stand-in.
    const bool direct = !enabled() && state.load(std::memory_order_acquire) == resolved;
    follow_mutex_routes(direct);
    follow_rwlock_routes(direct);
    busy.store(false, std::memory_order_release);
}

constinit real_functions real = {
    {stand_in_for<&real_functions::mutex_init>},
    {stand_in_for<&real_functions::mutex_destroy>},
    {stand_in_for<&real_functions::mutex_lock>},
    {stand_in_for<&real_functions::mutex_trylock>},
    {stand_in_for<&real_functions::mutex_timedlock>},
    {stand_in_for<&real_functions::mutex_clocklock>},
    {stand_in_for<&real_functions::mutex_unlock>},
    {stand_in_for<&real_functions::rwlock_init>},
    {stand_in_for<&real_functions::rwlock_destroy>},
    {stand_in_for<&real_functions::rwlock_rdlock>},
    {stand_in_for<&real_functions::rwlock_tryrdlock>},
    {stand_in_for<&real_functions::rwlock_timedrdlock>},
    {stand_in_for<&real_functions::rwlock_clockrdlock>},
    {stand_in_for<&real_functions::rwlock_wrlock>},
    {stand_in_for<&real_functions::rwlock_trywrlock>},
    {stand_in_for<&real_functions::rwlock_timedwrlock>},
    {stand_in_for<&real_functions::rwlock_clockwrlock>},
    {stand_in_for<&real_functions::rwlock_unlock>},
    {stand_in_for<&real_functions::spin_init>},
    {stand_in_for<&real_functions::spin_destroy>},
    {stand_in_for<&real_functions::spin_lock>},
    {stand_in_for<&real_functions::spin_trylock>},
    {stand_in_for<&real_functions::spin_unlock>},
    {stand_in_for<&real_functions::cond_wait>},
    {stand_in_for<&real_functions::cond_timedwait>},
    {stand_in_for<&real_functions::cond_clockwait>},
};

}  // namespace fencedep::preload
