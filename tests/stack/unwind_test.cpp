// SPDX-License-Identifier: MIT
// The cached walk (walk_stack) gives the frames libgcc's _Unwind_Backtrace gives, through every
// kind of frame the cache handles and the ones it hands back to libgcc: optimized frames without
// a frame pointer, frames with one (-O0, alloca), big frames, library code calling back, thread
// entry, a signal handler, and walks repeated from the cache.
#include <alloca.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "stack/modules.h"
#include "stack/unwind.h"

using fencedep::detail::current_modules;
using fencedep::detail::walk_stack;
using fencedep::detail::walk_stack_uncached;

namespace {

struct walks {
    std::vector<std::uintptr_t> cached;
    std::vector<std::uintptr_t> uncached;
};

// Both walks from the same function. Each starts in the walk function itself, then the return
// address of its call here, and those two pairs differ; every frame after them must be the same.
[[gnu::noinline]] walks walk_both_ways() {
    std::array<std::uintptr_t, 64> cached{};
    std::array<std::uintptr_t, 64> uncached{};
    const std::size_t cached_size = walk_stack(cached, current_modules().subs);
    const std::size_t uncached_size = walk_stack_uncached(uncached);
    asm volatile("" ::: "memory");
    return {{cached.begin(), cached.begin() + static_cast<std::ptrdiff_t>(cached_size)},
            {uncached.begin(), uncached.begin() + static_cast<std::ptrdiff_t>(uncached_size)}};
}

void check_same_callers(const walks& w) {
    REQUIRE(w.cached.size() > 2);
    REQUIRE(w.uncached.size() > 2);
    CHECK(std::vector(w.cached.begin() + 2, w.cached.end()) ==
          std::vector(w.uncached.begin() + 2, w.uncached.end()));
}

// A chain of distinct optimized functions, deeper than the walks keep.
template <int depth>
[[gnu::noinline]] walks deep() {
    walks w;
    if constexpr (depth == 0)
        w = walk_both_ways();
    else
        w = deep<depth - 1>();
    asm volatile("" ::: "memory");
    return w;
}

// A variable-sized frame: the compiler computes the CFA from the frame pointer.
[[gnu::noinline]] walks with_alloca(std::size_t bytes) {
    void* const block = alloca(bytes);
    asm volatile("" : : "r"(block) : "memory");
    walks w = walk_both_ways();
    asm volatile("" ::: "memory");
    return w;
}

// A frame far bigger than the others.
[[gnu::noinline]] walks with_big_frame() {
    volatile char buffer[200000];
    buffer[0] = 1;
    walks w = with_alloca(static_cast<std::size_t>(buffer[0]) * 100);
    asm volatile("" ::: "memory");
    return w;
}

// Unoptimized code keeps a frame pointer and saves it first thing.
#if defined(__clang__)
#define UNOPTIMIZED [[clang::optnone]] [[gnu::noinline]]
#else
#define UNOPTIMIZED [[gnu::optimize("O0")]] [[gnu::noinline]]
#endif
UNOPTIMIZED walks unoptimized(int levels) {
    if (levels == 0)
        return with_big_frame();
    return unoptimized(levels - 1);
}

// The C library's qsort calls back into this file: its frames come from the C library's tables.
walks walked_in_callback;
extern "C" int compare_and_walk(const void* a, const void* b) {
    if (walked_in_callback.cached.empty())
        walked_in_callback = walk_both_ways();
    return *static_cast<const int*>(a) - *static_cast<const int*>(b);
}

walks walked_in_handler;
void walk_in_handler(int) {
    walked_in_handler = walk_both_ways();
}

}  // namespace

TEST_SUITE("stack") {

TEST_CASE("the cached walk agrees with libgcc's frame for frame") {
    SUBCASE("a chain deeper than the walk keeps") {
        check_same_callers(deep<80>());
    }
    SUBCASE("frames whose CFA comes from the frame pointer, big frames, unoptimized frames") {
        check_same_callers(with_alloca(64));
        check_same_callers(with_big_frame());
        check_same_callers(unoptimized(5));
    }
    SUBCASE("the C library's frames, calling back") {
        std::array<int, 8> values{5, 3, 7, 1, 8, 2, 6, 4};
        walked_in_callback = {};
        std::qsort(values.data(), values.size(), sizeof(int), compare_and_walk);
        check_same_callers(walked_in_callback);
        CHECK(values.front() == 1);
    }
    SUBCASE("to the outermost frame of a thread") {
        walks w;
        std::thread([&] { w = deep<3>(); }).join();
        check_same_callers(w);
        CHECK(w.cached.size() < 64);  // the whole stack, ended where libgcc ends it
    }
    SUBCASE("across a signal frame, which the cache hands to libgcc") {
        struct sigaction action {};
        action.sa_handler = walk_in_handler;
        struct sigaction old {};
        REQUIRE(sigaction(SIGUSR1, &action, &old) == 0);
        walked_in_handler = {};
        raise(SIGUSR1);
        sigaction(SIGUSR1, &old, nullptr);
        check_same_callers(walked_in_handler);
    }
    SUBCASE("again, from the rules cached by the walks before") {
        for (int i = 0; i < 3; ++i) {
            check_same_callers(deep<10>());
            check_same_callers(unoptimized(2));
        }
    }
}

TEST_CASE("a walk of a full buffer stops at its end") {
    std::array<std::uintptr_t, 3> frames{};
    CHECK(walk_stack(frames, current_modules().subs) == 3);
    CHECK(std::find(frames.begin(), frames.end(), 0u) == frames.end());
}

}  // TEST_SUITE
