// SPDX-License-Identifier: MIT
// capture_stack walks no deeper than the trace it keeps, and looks up each return address's unwind
// table once. Each lookup is a call of _dl_find_object, so this test counts those calls (it defines
// _dl_find_object, which libgcc's FDE lookup then calls, and forwards to the C library's).
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

using find_function = int (*)(void*, dl_find_object*);

std::atomic<unsigned> lookups{0};

// Resolved before main, so that no thread asks the dynamic linker for it while unwinding.
const find_function c_library_find = reinterpret_cast<find_function>(dlsym(RTLD_NEXT, "_dl_find_object"));

// A chain of distinct functions, 100 frames deep.
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

extern "C" int _dl_find_object(void* address, dl_find_object* result) noexcept {
    lookups.fetch_add(1);
    return c_library_find(address, result);
}

TEST_SUITE("stack") {

TEST_CASE("a capture of 2 frames 100 frames deep walks about 2 frames, once") {
    const unsigned before = lookups.load();
    const stack_id id = deep<100>();
    const unsigned walked = lookups.load() - before;
    REQUIRE(id != 0);
    CHECK(stack_addresses(id).size() == 2);
    const std::vector<frame> frames = symbolize_stack(id);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].function == "unsigned int (anonymous namespace)::deep<0>()");
    CHECK(frames[1].function == "unsigned int (anonymous namespace)::deep<1>()");
    // One lookup per frame stepped over: the walk's own, capture_stack's and the 2 kept. The walk
    // ends at deep<2>'s frame, the last it has room for (a slack of 3), without stepping over it.
    CHECK(walked == 4);

    // The same walk again finds every rule in the cache.
    const unsigned again = lookups.load();
    CHECK(deep<100>() == id);
    CHECK(lookups.load() == again);
}

}  // TEST_SUITE
