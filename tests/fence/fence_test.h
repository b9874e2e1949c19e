// SPDX-License-Identifier: MIT
// Shared by the fence suites: mock fences (the kernel selftests' mocks) and callback helpers.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>
#include <fencedep/fencedep.h>

namespace fence_test {

// How many mock fences are alive, so that a test can check that all it built was released.
inline std::atomic<long> live_mocks{0};

struct live_mock_count {
    live_mock_count() noexcept { ++live_mocks; }
    ~live_mock_count() { --live_mocks; }
    live_mock_count(const live_mock_count&) = delete;
    live_mock_count& operator=(const live_mock_count&) = delete;
};

// A driver fence with no ops beyond the names: the creator signals it.
struct mock_fence final : fencedep::fence {
    using fence::fence;
    const char* driver_name() const noexcept override { return "mock"; }
    const char* timeline_name() const noexcept override { return "mock"; }
    live_mock_count counted;
};

// A fresh context, seqno 1, the fence's own lock (class "fence->lock").
inline fencedep::fence_ref<> mock() {
    return fencedep::make_fence<mock_fence>(fencedep::fence::allocate_contexts(1), 1);
}

inline fencedep::fence_ref<> mock(std::uint64_t context, std::uint64_t seqno) {
    return fencedep::make_fence<mock_fence>(context, seqno);
}

// On a driver lock shared with other fences; context 0 (the stub's) stands for a fresh one.
inline fencedep::fence_ref<> mock_on(fencedep::spinlock& lock, std::uint64_t context = 0,
                                     std::uint64_t seqno = 1) {
    if (context == 0)
        context = fencedep::fence::allocate_contexts(1);
    return fencedep::make_fence<mock_fence>(lock, context, seqno);
}

// A callback that records that it ran.
struct flag_callback : fencedep::fence_callback {
    std::atomic<bool> seen{false};
    static void run(fencedep::fence&, fencedep::fence_callback& cb) noexcept {
        static_cast<flag_callback&>(cb).seen.store(true);
    }
};

// An array (fresh context, seqno 1, signal when all) over `fences`, as the unwrap selftests'
// mock_array.
inline fencedep::fence_ref<fencedep::fence_array> array_of(std::vector<fencedep::fence_ref<>> fences) {
    return fencedep::fence_array::create(std::move(fences), fencedep::fence::allocate_contexts(1), 1);
}

// The leaves of `head`, in iteration order.
inline std::vector<fencedep::fence*> leaves(fencedep::fence& head) {
    std::vector<fencedep::fence*> out;
    for (fencedep::fence& f : fencedep::unwrap(head))
        out.push_back(&f);
    return out;
}

}  // namespace fence_test
