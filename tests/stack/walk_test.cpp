// SPDX-License-Identifier: MIT
// capture_stack walks no deeper than the trace it keeps. libunwind looks up the unwind table of
// every frame it has not seen before with dl_iterate_phdr, so this test counts those calls (it
// defines dl_iterate_phdr, which libunwind then calls, and forwards to the C library's).
#include <dlfcn.h>
#include <link.h>

#include <atomic>

#include <doctest/doctest.h>

#include "stack/stack.h"

using fencedep::frame;
using fencedep::detail::capture_stack;
using fencedep::detail::stack_addresses;
using fencedep::detail::stack_id;
using fencedep::detail::symbolize_stack;

namespace {

using iterate_function = int (*)(int (*)(dl_phdr_info*, std::size_t, void*), void*);

std::atomic<unsigned> iterations{0};

// Resolved before main, so that no thread asks the dynamic linker for it while unwinding.
const iterate_function c_library_iterate =
    reinterpret_cast<iterate_function>(dlsym(RTLD_NEXT, "dl_iterate_phdr"));

// A chain of distinct functions, so that the unwinder has seen none of their frames before.
template <int depth>
[[gnu::noinline]] stack_id deep() {
    stack_id id = 0;
    if constexpr (depth == 0)
        id = capture_stack(2);
    else
        id = deep<depth - 1>();
    // Keeps the call from being a tail call, which would take this frame off the stack.
    asm volatile("" ::: "memory");
    return id;
}

}  // namespace

extern "C" int dl_iterate_phdr(int (*callback)(dl_phdr_info*, std::size_t, void*), void* data) {
    iterations.fetch_add(1);
    return c_library_iterate(callback, data);
}

TEST_SUITE("stack") {

TEST_CASE("a capture of 2 frames 100 frames deep walks about 2 frames") {
    const unsigned before = iterations.load();
    const stack_id id = deep<100>();
    const unsigned walked = iterations.load() - before;
    REQUIRE(id != 0);
    CHECK(stack_addresses(id).size() == 2);
    const std::vector<frame> frames = symbolize_stack(id);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].function == "unsigned int (anonymous namespace)::deep<0>()");
    CHECK(frames[1].function == "unsigned int (anonymous namespace)::deep<1>()");
    // The walk (2 frames and the unwinder's slack of 16) and the module table's check.
    CHECK(walked < 30);
}

}  // TEST_SUITE
