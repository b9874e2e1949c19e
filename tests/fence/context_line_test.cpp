// SPDX-License-Identifier: MIT
// Context lines: each fence operation that takes a lock names itself, once, in the report.
#include <mutex>
#include <string>

#include "../engine/capture.h"
#include "fence_test.h"

using engine_test::capture;
using engine_test::classes_of;
using fence_test::flag_callback;
using fence_test::mock;
using fencedep::fence;

namespace {

fencedep::lock_class_key ring_key;
fencedep::lock_class_key hw_key;

// How a context line names a mock fence.
std::string mock_name(const fence& f) {
    return "fence 'mock' ctx " + std::to_string(f.context()) + " seqno 1";
}

// A callback that removes another callback from a second fence: a recovery path taking that
// fence's lock under the signalled fence's.
struct removing_callback : fencedep::fence_callback {
    fence* other = nullptr;
    fencedep::fence_callback* target = nullptr;
    bool removed = false;
    static void run(fence&, fencedep::fence_callback& cb) noexcept {
        auto& self = static_cast<removing_callback&>(cb);
        self.removed = self.other->remove_callback(*self.target);
    }
};

// A leaf whose signaled() op reads a hardware register under a driver spinlock.
struct polled_fence final : fence {
    explicit polled_fence(fencedep::spinlock& hw_lock)
        : fence(fence::allocate_contexts(1), 1), hw(hw_lock) {}
    const char* driver_name() const noexcept override { return "polled"; }
    const char* timeline_name() const noexcept override { return "poll"; }
    bool signaled() noexcept override {
        std::lock_guard guard(hw);
        return false;
    }
    fencedep::spinlock& hw;
};

}  // namespace

TEST_SUITE("fence-context-lines") {

TEST_CASE("remove_callback: a dependency recorded in it names the fence whose lock it takes") {
    capture cap;
    fencedep::spinlock ring_lock{"ring->fence_lock", ring_key};
    auto f = fence_test::mock_on(ring_lock);
    auto g = mock();  // class fence->lock
    flag_callback on_g;
    REQUIRE(g->add_callback(on_g, flag_callback::run) == 0);
    removing_callback cb;
    cb.other = g.get();
    cb.target = &on_g;
    REQUIRE(f->add_callback(cb, removing_callback::run) == 0);
    f->signal();  // ring->fence_lock -> fence->lock, in remove_callback on g
    CHECK(cb.removed);
    auto h = fence_test::mock_on(ring_lock);
    {
        fencedep::fence_lock_guard guard(*g);
        h->signal();  // fence->lock -> ring->fence_lock
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto report = cap.at(0);
    CHECK(classes_of(report) == "fence->lock, ring->fence_lock");
    REQUIRE(report.contexts.size() == 2);
    INFO("text:\n", report.text);
    CHECK(report.contexts[0] == "signalling " + mock_name(*f) + ", running a signal callback of " +
                                    mock_name(*f) + ", removing a callback from " + mock_name(*g));
    CHECK(report.contexts[1] == "signalling " + mock_name(*h));
}

TEST_CASE("get_status: the query frame is pushed once") {
    capture cap;
    fencedep::spinlock hw{"hw->lock", hw_key};
    auto f = fencedep::make_fence<polled_fence>(hw);
    CHECK(f->get_status() == 0);  // fence->lock -> hw->lock, in the signaled() op
    auto g = mock();
    {
        std::lock_guard guard(hw);
        g->signal();  // hw->lock -> fence->lock
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto report = cap.at(0);
    CHECK(classes_of(report) == "hw->lock, fence->lock");
    REQUIRE(report.contexts.size() == 2);
    INFO("text:\n", report.text);
    CHECK(report.contexts[0] ==
          "querying fence 'poll' ctx " + std::to_string(f->context()) + " seqno 1");
    CHECK(report.contexts[1] == "signalling " + mock_name(*g));
}

}  // TEST_SUITE
