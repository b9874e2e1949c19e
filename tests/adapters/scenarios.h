// SPDX-License-Identifier: MIT
// The lock orders the adapter programs' cases run, the same in doctest and in GoogleTest.
// Built with -DENABLE_IN_CODE, a program switches fencedep on itself (fencedep::enable(true))
// instead of relying on FENCEDEP=1. With ADAPTER_STATIC_SPLAT=1 in its environment it makes a
// splat while it starts, before any test case: that one goes to the log and the exit status.
#pragma once

#include <cstdlib>
#include <string_view>
#include <mutex>
#include <thread>

#include <fencedep/fence.h>
#include <fencedep/fence_array.h>
#include <fencedep/fence_chain.h>
#include <fencedep/mutex.h>

namespace scenarios {

inline fencedep::mutex a{"a"};
inline fencedep::mutex b{"b"};
inline fencedep::mutex c{"c"};
inline fencedep::mutex d{"d"};

// Takes `first` then `second`.
inline void nest(fencedep::mutex& first, fencedep::mutex& second) {
    std::lock_guard<fencedep::mutex> outer(first);
    std::lock_guard<fencedep::mutex> inner(second);
}

// Both orders, one after the other: a circular_dependency splat between `second` (held) and
// `first` (being taken).
inline void abba(fencedep::mutex& first, fencedep::mutex& second) {
    nest(first, second);
    nest(second, first);
}

inline void abba_on_a_thread() {
    std::thread t([] { abba(a, b); });
    t.join();
}

struct job final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "test"; }
    const char* timeline_name() const noexcept override { return "jobs"; }
};
inline fencedep::spinlock job_lock{"job_lock"};

// A chain point placed in an array: a fence_container_nesting warning, which is no splat
// (container_rules=warn, the default).
inline void nest_containers() {
    auto leaf = fencedep::make_fence<job>(job_lock, fencedep::fence::allocate_contexts(1), 1);
    auto point = fencedep::fence_chain::create(nullptr, leaf, 1);
    auto array = fencedep::fence_array::create({point}, fencedep::fence::allocate_contexts(1), 1);
}

inline const bool started = [] {
#ifdef ENABLE_IN_CODE
    fencedep::enable(true);
#endif
    const char* splat = std::getenv("ADAPTER_STATIC_SPLAT");
    if (splat != nullptr && splat == std::string_view("1"))
        abba(b, c);
    return true;
}();

}  // namespace scenarios
