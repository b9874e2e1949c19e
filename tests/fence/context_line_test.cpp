// SPDX-License-Identifier: MIT
// Context lines: each fence operation that takes a lock names itself, once, in the report.
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

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

// A leaf that counts the calls to its name ops.
std::atomic<int> name_calls{0};
struct counted_fence : fence {
    using fence::fence;
    const char* driver_name() const noexcept override {
        ++name_calls;
        return "counted";
    }
    const char* timeline_name() const noexcept override {
        ++name_calls;
        return "count";
    }
};

// A leaf whose release() frees it first, then takes two driver locks: its release frame must
// not need the fence to name it.
struct freeing_fence final : counted_fence {
    freeing_fence(fencedep::spinlock& a, fencedep::spinlock& b)
        : counted_fence(fence::allocate_contexts(1), 1), first(a), second(b) {}
    void release() noexcept override {
        fencedep::spinlock& a = first;
        fencedep::spinlock& b = second;
        delete this;
        std::lock_guard outer(a);
        std::lock_guard inner(b);
    }
    fencedep::spinlock& first;
    fencedep::spinlock& second;
};

}  // namespace

TEST_SUITE("fence-context-lines") {

TEST_CASE("a fence is named only when a dependency recorded in its operation or a report needs it") {
    capture cap;
    fencedep::spinlock ring_lock{"counted ring->lock"};
    // Kept to the end: a release names its fence at once (see the next case).
    std::vector<fencedep::fence_ref<>> kept;
    const auto round = [&] {
        auto f = fencedep::make_fence<counted_fence>(ring_lock, fence::allocate_contexts(1), 1);
        flag_callback cb;
        REQUIRE(f->add_callback(cb, flag_callback::run) == 0);
        f->signal();
        CHECK(cb.seen);
        kept.push_back(f);
    };
    round();  // new dependencies (fence_signalling -> ring lock), recorded with the frames' names
    CHECK(name_calls > 0);
    name_calls = 0;
    round();  // every chain known: nothing is recorded, so nothing is named
    CHECK(name_calls == 0);

    fencedep::spinlock driver{"counted driver"};
    auto f = fencedep::make_fence<counted_fence>(ring_lock, fence::allocate_contexts(1), 1);
    {
        std::lock_guard guard(driver);
        f->signal();  // driver -> fence_signalling, ring lock: new, named now
    }
    CHECK(name_calls > 0);
    struct taking_driver : fencedep::fence_callback {
        fencedep::spinlock* lock = nullptr;
        static void run(fence&, fencedep::fence_callback& cb) noexcept {
            std::lock_guard guard(*static_cast<taking_driver&>(cb).lock);
        }
    } takes;
    takes.lock = &driver;
    auto g = fencedep::make_fence<counted_fence>(ring_lock, fence::allocate_contexts(1), 1);
    REQUIRE(g->add_callback(takes, taking_driver::run) == 0);
    g->signal();  // ring lock -> driver, in g's callback
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto report = cap.at(0);
    INFO("text:\n", report.text);
    CHECK(classes_of(report) == "counted ring->lock, counted driver");
    const std::string g_name = "fence 'count' ctx " + std::to_string(g->context()) + " seqno 1";
    CHECK(report.contexts.back() == "signalling " + g_name + ", running a signal callback of " + g_name);
}

TEST_CASE("release: the frame names the fence though release() frees it") {
    capture cap;
    fencedep::spinlock a{"freed A"};
    fencedep::spinlock b{"freed B"};
    auto* f = new freeing_fence(a, b);
    const std::string name = "fence 'count' ctx " + std::to_string(f->context()) + " seqno 1";
    fencedep::fence_ref<>::adopt(f).reset();  // freed A -> freed B, while releasing f
    {
        std::lock_guard inner(b);
        std::lock_guard outer(a);
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto report = cap.at(0);
    INFO("text:\n", report.text);
    CHECK(classes_of(report) == "freed B, freed A");
    REQUIRE(report.contexts.size() == 2);
    CHECK(report.contexts[0] == "releasing " + name);
    CHECK(report.contexts[1] == "");
}

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
