// SPDX-License-Identifier: MIT
// The fence family beyond the kernel selftests: references, release, deferred work, arrays, chains.
#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "fence_test.h"
#include "modes.h"

using fence_test::array_of;
using fence_test::flag_callback;
using fence_test::mock;
using fence_test::mode_scope;
using fencedep::fence;
using fencedep::fence_array;
using fencedep::fence_chain;
using fencedep::fence_ref;
using namespace std::chrono_literals;

namespace {

// Counts releases instead of freeing: the fence lives in the test.
struct counted_fence final : fence {
    counted_fence() : fence(fence::allocate_contexts(1), 1) {}
    const char* driver_name() const noexcept override { return "counted"; }
    const char* timeline_name() const noexcept override { return "counted"; }
    void release() noexcept override { ++releases; }
    int releases = 0;
};

// Runs `body` on a thread with exactly an 8 MiB stack, the budget the deep-release tests are
// held to.
void on_8mib_stack(const std::function<void()>& body) {
    pthread_attr_t attr;
    REQUIRE(pthread_attr_init(&attr) == 0);
    REQUIRE(pthread_attr_setstacksize(&attr, 8u << 20) == 0);
    pthread_t thread;
    auto trampoline = [](void* arg) -> void* {
        (*static_cast<const std::function<void()>*>(arg))();
        return nullptr;
    };
    REQUIRE(pthread_create(&thread, &attr, trampoline, const_cast<std::function<void()>*>(&body)) == 0);
    pthread_join(thread, nullptr);
    pthread_attr_destroy(&attr);
}

}  // namespace

TEST_SUITE("fence-family") {

TEST_CASE("references: fence_ref copies, moves and releases exactly once") {
    counted_fence f;
    {
        auto a = fence_ref<>::adopt(&f);  // the constructor's reference
        fence_ref<> b = a;
        fence_ref<> c = std::move(b);
        CHECK_FALSE(b);
        fence_ref<counted_fence> d(f);
        fence_ref<> e = d;
        CHECK(e == a);
        CHECK(f.releases == 0);
    }
    CHECK(f.releases == 1);
}

TEST_CASE("release with callbacks pending signals with -EDEADLK first") {
    auto f = mock();
    flag_callback cb;
    REQUIRE(f->add_callback(cb, flag_callback::run) == 0);
    f.reset();  // a reference-counting bug: the callback's fence goes away unsignaled
    CHECK(cb.seen);
}

TEST_CASE("release of a 100,000-point chain runs in constant stack") {
    const long before = fence_test::live_mocks;
    on_8mib_stack([] {
        fence_ref<> tail;
        for (int i = 0; i < 100000; ++i)
            tail = fence_chain::create(std::move(tail), mock(), static_cast<std::uint64_t>(i) + 1);
        CHECK(fence_test::live_mocks >= 100000);
        tail.reset();
    });
    // Every point dropped its contained fence: the whole chain was released.
    CHECK(fence_test::live_mocks == before);
}

TEST_CASE("release of 10,000-deep alternating array/chain nesting runs in constant stack") {
    // Every level breaks the container rules; this case is about release only.
    mode_scope modes(fence_test::enable_signaling_mode::locked, fence_test::container_rules_mode::off);
    const long before = fence_test::live_mocks;
    on_8mib_stack([&] {
        fence_ref<> head = mock();
        for (int i = 0; i < 10000; ++i) {
            if (i % 2)
                head = array_of({std::move(head)});
            else
                head = fence_chain::create(nullptr, std::move(head), 1);
        }
        CHECK(fence_test::live_mocks == before + 1);
        head.reset();
    });
    // The innermost leaf goes last, once all 10,000 containers above it are released.
    CHECK(fence_test::live_mocks == before);
}

TEST_CASE("seqno: the kernel's is-later rule, 32-bit wrap-around and 64-bit") {
    const auto ctx = fence::allocate_contexts(1);
    auto a = mock(ctx, 1);
    auto wrapped = mock(ctx, 0x1'0000'0000ull);  // low 32 bits 0: earlier than 1 on 32 bits
    CHECK(fence::is_later(*a, *wrapped));
    CHECK_FALSE(fence::is_later(*wrapped, *a));
    CHECK(a->seqno_is_later(0, 0xffff'ffffu));  // wrap-around
    auto chain = fence_chain::create(nullptr, mock(), 1);
    CHECK_FALSE(chain->seqno_is_later(0, 0xffff'ffffu));  // 64-bit
    CHECK(chain->seqno_is_later(0x1'0000'0000ull, 1));
    CHECK_FALSE(fence::is_later(*a, *mock()));  // different contexts
    CHECK_THROWS_AS(fence::allocate_contexts(0), std::invalid_argument);
}

TEST_CASE("chain: the seqno and context contract") {
    auto c1 = fence_chain::create(nullptr, mock(), 5);
    auto later = fence_chain::create(c1, mock(), 6);
    CHECK(later->context() == c1->context());
    CHECK(later->prev_seqno() == 5);
    auto not_later = fence_chain::create(c1, mock(), 3);
    CHECK(not_later->context() != c1->context());
    CHECK(not_later->seqno() == 5);  // raised to prev's
    CHECK(not_later->prev_seqno() == 0);
    auto after_leaf = fence_chain::create(mock(), mock(), 9);
    CHECK(after_leaf->prev_seqno() == 0);
    CHECK(&fence_chain::contained_of(*c1) == &c1->contained());
    CHECK_THROWS_AS(fence_chain::create(nullptr, nullptr, 1), std::invalid_argument);
}

TEST_CASE("chain: walk collects signaled points; iteration leaks nothing when left early") {
    auto f1 = mock();
    auto f2 = mock();
    auto f3 = mock();
    auto c1 = fence_chain::create(nullptr, f1, 1);
    auto c2 = fence_chain::create(c1, f2, 2);
    auto c3 = fence_chain::create(c2, f3, 3);
    f2->signal();
    auto next = fence_chain::walk(fence_ref<>(*c3));
    CHECK(next == c1);          // c2 unlinked from c3
    CHECK(c3->prev() == c1);
    int visited = 0;
    for (fence& point : fence_chain::nodes(*c3)) {
        ++visited;
        if (&point == c3.get())
            break;
    }
    CHECK(visited == 1);
    f1->signal();
    f3->signal();
    CHECK(c3->is_signaled());
}

FENCE_MODE_CASE("array: signals when all children have, first error wins, signal_on_any") {

    SUBCASE("all, first error wins") {
        auto f1 = mock();
        auto f2 = mock();
        auto f3 = mock();
        auto a = array_of({f1, f2, f3});
        flag_callback cb;
        REQUIRE(a->add_callback(cb, flag_callback::run) == 0);
        f2->set_error(-ETIME);
        f2->signal();
        f1->set_error(-EIO);
        f1->signal();
        CHECK_FALSE(a->test_signaled_flag());
        f3->signal();
        // Deferred work ran before signal() returned: no waiting, no timing.
        CHECK(cb.seen);
        CHECK(a->get_status() == -ETIME);
    }
    SUBCASE("signal_on_any") {
        auto f1 = mock();
        auto f2 = mock();
        auto a = fence_array::create({f1, f2}, fence::allocate_contexts(1), 1, true);
        a->enable_sw_signaling();
        f2->signal();
        CHECK(a->test_signaled_flag());
        CHECK(a->get_status() == 1);
        f1->signal();
    }
    SUBCASE("children already signaled: enabling signals the array at once") {
        auto f1 = mock();
        f1->signal();
        auto a = array_of({f1});
        a->enable_sw_signaling();
        CHECK(a->test_signaled_flag());
    }
    SUBCASE("never enabled: is_signaled counts the children") {
        auto f1 = mock();
        auto f2 = mock();
        auto a = array_of({f1, f2});
        f1->signal();
        CHECK_FALSE(a->is_signaled());
        f2->signal();
        CHECK(a->is_signaled());
    }
    CHECK_THROWS_AS(array_of({}), std::invalid_argument);
    CHECK_THROWS_AS(array_of({nullptr}), std::invalid_argument);
}

TEST_CASE("array never enabled: get_status and is_signaled do not take the children's errors") {
    // The kernel's signaled op only counts signaled children; errors reach an array through
    // enabling and its child callbacks, so an array found signaled by a peek has none.
    for (const bool any : {false, true}) {
        CAPTURE(any);
        auto failed = mock();
        failed->set_error(-EIO);
        failed->signal();
        auto good = mock();
        if (!any)
            good->signal();
        auto by_status = fence_array::create({failed, good}, fence::allocate_contexts(1), 1, any);
        CHECK(by_status->get_status() == 1);
        auto by_peek = fence_array::create({failed, good}, fence::allocate_contexts(1), 1, any);
        CHECK(by_peek->is_signaled());
        CHECK(by_peek->error() == 0);
        good->signal();
    }
}

FENCE_MODE_CASE("array enabled: a child's error reaches it through enabling or the child's callback") {
    for (const bool any : {false, true}) {
        for (const bool failed_first : {false, true}) {
            CAPTURE(any);
            CAPTURE(failed_first);
            auto failed = mock();
            failed->set_error(-EIO);
            auto good = mock();
            auto a = fence_array::create({failed, good}, fence::allocate_contexts(1), 1, any);
            if (failed_first)
                failed->signal();
            a->enable_sw_signaling();
            failed->signal();
            good->signal();
            CHECK(a->get_status() == -EIO);
        }
    }
}

FENCE_MODE_CASE("deferred work: a 4096-point timeline over arrays signals iteratively") {
    on_8mib_stack([] {
        std::vector<fence_ref<>> leaves;
        fence_ref<> tail;
        for (int i = 0; i < 4096; ++i) {
            leaves.push_back(mock());
            tail = fence_chain::create(std::move(tail), array_of({leaves.back()}),
                                       static_cast<std::uint64_t>(i) + 1);
        }
        tail->enable_sw_signaling();
        for (auto it = leaves.rbegin(); it != leaves.rend(); ++it)
            (*it)->signal();
        CHECK(tail->test_signaled_flag());
    });
}

FENCE_MODE_CASE("deferred work: fence_lock_guard and flush_deferred") {
    auto f = mock();
    auto a = array_of({f});
    a->enable_sw_signaling();

    SUBCASE("signal_locked under a guard: the array signals when the guard is released") {
        {
            fencedep::fence_lock_guard guard(*f);
            CHECK(f->signal_locked());
            CHECK_FALSE(a->test_signaled_flag());  // still under the child's lock
        }
        CHECK(a->test_signaled_flag());
    }
    SUBCASE("signal_locked under the raw lock: flush_deferred runs the work") {
        f->lock().lock();
        f->signal_locked();
        f->lock().unlock();
        CHECK_FALSE(a->test_signaled_flag());
        fencedep::flush_deferred();
        CHECK(a->test_signaled_flag());
    }
    SUBCASE("work queued by a thread that exits without another fence operation runs at exit") {
        std::thread t([&] {
            f->lock().lock();
            f->signal_locked();
            f->lock().unlock();
        });
        t.join();
        CHECK(a->test_signaled_flag());
    }
    SUBCASE("a waiter runs its own thread's work before sleeping") {
        f->lock().lock();
        f->signal_locked();
        f->lock().unlock();
        a->wait();
        CHECK(a->test_signaled_flag());
    }
}

FENCE_MODE_CASE("wait: timeout, wait_any, waiting from another thread") {
    auto f1 = mock();
    auto f2 = mock();
    fence* both[] = {f1.get(), f2.get()};
    CHECK_FALSE(fence::wait_any(both, 0ns).has_value());
    CHECK_FALSE(fence::wait_any(both, 1ms).has_value());
    CHECK_FALSE(f1->wait_timeout(-1ms));
    std::thread signaller([&] { f2->signal(); });
    CHECK(fence::wait_any(both, std::chrono::nanoseconds::max()) == 1u);
    signaller.join();
    std::thread waiter([&] { f1->wait(); });
    f1->signal();
    waiter.join();
    CHECK(f1->wait_timeout(0ns));
}

TEST_CASE("the _locked calls under a fence_lock_guard") {
    auto f = mock();
    flag_callback cb;
    REQUIRE(f->add_callback(cb, flag_callback::run) == 0);
    {
        fencedep::fence_lock_guard guard(*f);
        CHECK(f->get_status_locked() == 0);
        CHECK_FALSE(f->is_signaled_locked());
        CHECK(f->signal_locked());
        CHECK(cb.seen);
        CHECK(f->is_signaled_locked());
        CHECK(f->get_status_locked() == 1);
    }
}

TEST_CASE("set_error is ignored after signal and for values that are not errors") {
    auto f = mock();
    f->set_error(5);
    f->set_error(-5000);
    f->signal();
    f->set_error(-EIO);
    CHECK(f->get_status() == 1);
}

TEST_CASE("merge: all signaled gives a stub with the latest timestamp; one left gives itself") {
    auto f1 = mock();
    auto f2 = mock();
    const auto t0 = fencedep::fence_clock::now();
    f1->signal_timestamp(t0);
    f2->signal_timestamp(t0 + 5ms);
    auto all_done = fencedep::unwrap_merge({f1.get(), f2.get()});
    CHECK(all_done->test_signaled_flag());
    CHECK(all_done->timestamp() == t0 + 5ms);
    // A private stub, as dma_fence_allocate_private_stub makes: the stub's context and seqno,
    // but not the global stub, whose timestamp is its own.
    CHECK(all_done->context() == 0);
    CHECK(all_done->seqno() == 0);
    CHECK(all_done != fencedep::stub_fence());
    CHECK(all_done != f1);
    CHECK(all_done != f2);

    auto f3 = mock();
    auto one = fencedep::unwrap_merge({f1.get(), f3.get()});
    CHECK(one == f3);
    f3->signal();
}

TEST_CASE("private stub: context 0, seqno 0, signaled with the given timestamp") {
    const auto t = fencedep::fence_clock::now() - 1s;
    auto stub = fencedep::make_private_stub(t);
    CHECK(stub->context() == 0);
    CHECK(stub->seqno() == 0);
    CHECK(stub->test_signaled_flag());
    CHECK(stub->timestamp() == t);
    CHECK(stub != fencedep::make_private_stub(t));
}

FENCE_MODE_CASE("enable_signaling runs under the fence lock in locked mode only") {
    struct probe_fence final : fence {
        probe_fence() : fence(fence::allocate_contexts(1), 1) {}
        const char* driver_name() const noexcept override { return "probe"; }
        const char* timeline_name() const noexcept override { return "probe"; }
        bool enable_signaling() noexcept override {
            held = fencedep::detail::held_lock_count();
            return true;
        }
        unsigned held = 99;
    };
    auto f = fencedep::make_fence<probe_fence>();
    f->enable_sw_signaling();
    CHECK(f->held == (mode == fence_test::enable_signaling_mode::locked ? 1u : 0u));
    f->signal();
}

}  // TEST_SUITE
