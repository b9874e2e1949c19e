// SPDX-License-Identifier: MIT
// The kernel's "dma-buf-fence" selftests (st-dma-fence.c), re-created against fencedep's fence.
#include <cerrno>
#include <chrono>
#include <mutex>
#include <thread>

#include "fence_test.h"

using fence_test::flag_callback;
using fence_test::mock;
using namespace std::chrono_literals;

TEST_SUITE("dma-buf-fence") {

TEST_CASE("sanitycheck") {
    const long before = fence_test::live_mocks;
    {
        auto f = mock();
        f->enable_sw_signaling();
        f->signal();
        CHECK(f->is_signaled());
    }
    CHECK(fence_test::live_mocks == before);  // released with its last reference
}

TEST_CASE("test_signaling") {
    auto f = mock();
    f->enable_sw_signaling();
    CHECK_FALSE(f->is_signaled());
    CHECK(f->signal());  // "was not signaled"
    CHECK(f->is_signaled());
    CHECK_FALSE(f->signal());  // "already signaled"
}

TEST_CASE("test_add_callback") {
    auto f = mock();
    flag_callback cb;
    REQUIRE(f->add_callback(cb, flag_callback::run) == 0);
    f->signal();
    CHECK(cb.seen);
}

TEST_CASE("test_late_add_callback") {
    auto f = mock();
    f->enable_sw_signaling();
    f->signal();
    flag_callback cb;
    CHECK(f->add_callback(cb, flag_callback::run) == -ENOENT);
    f->signal();
    CHECK_FALSE(cb.seen);
}

TEST_CASE("test_rm_callback") {
    auto f = mock();
    flag_callback cb;
    REQUIRE(f->add_callback(cb, flag_callback::run) == 0);
    CHECK(f->remove_callback(cb));
    f->signal();
    CHECK_FALSE(cb.seen);
}

TEST_CASE("test_late_rm_callback") {
    auto f = mock();
    flag_callback cb;
    REQUIRE(f->add_callback(cb, flag_callback::run) == 0);
    f->signal();
    CHECK(cb.seen);
    CHECK_FALSE(f->remove_callback(cb));
}

TEST_CASE("test_status") {
    auto f = mock();
    f->enable_sw_signaling();
    CHECK(f->get_status() == 0);
    f->signal();
    CHECK(f->get_status() == 1);
}

TEST_CASE("test_error") {
    auto f = mock();
    f->enable_sw_signaling();
    f->set_error(-EIO);
    CHECK(f->get_status() == 0);
    f->signal();
    CHECK(f->get_status() == -EIO);
}

TEST_CASE("test_wait") {
    auto f = mock();
    f->enable_sw_signaling();
    CHECK_FALSE(f->wait_timeout(0ns));  // not complete
    f->signal();
    CHECK(f->wait_timeout(0ns));  // complete
}

TEST_CASE("test_wait_timeout") {
    auto f = mock();
    f->enable_sw_signaling();
    CHECK_FALSE(f->wait_timeout(1ms));
    // A "timer" that signals later: the waiter needs no luck, only a limit that a correct
    // implementation never comes near.
    std::thread timer([&] {
        std::this_thread::sleep_for(1ms);
        f->signal();
    });
    CHECK(f->wait_timeout(30s));
    timer.join();
}

TEST_CASE("test_stub") {
    for (int i = 0; i < 64; ++i) {
        auto f = fencedep::stub_fence();
        CHECK(f->is_signaled());
        CHECK(f->context() == 0);
    }
}

// Two threads, each with its own fence published in a slot, add a callback to the other's fence
// and signal their own, before (pass 0) or after (pass 1) adding. A callback that was added must
// be seen once the other fence has been waited on and its lock taken and dropped (which flushes a
// callback still running).
TEST_CASE("race_signal_callback") {
    if (std::thread::hardware_concurrency() < 2)
        return;  // the kernel skips it on one CPU too
    constexpr auto pass_time = 50ms;
    for (int pass = 0; pass < 2; ++pass) {
        std::mutex slots_lock;  // stands in for the RCU slots
        fencedep::fence_ref<> slots[2];
        std::atomic<bool> stop{false};
        std::atomic<unsigned> failures{0};
        std::atomic<unsigned long> passes{0}, misses{0};
        auto worker = [&](int me) {
            const int other = 1 - me;
            while (!stop.load()) {
                auto own = mock();
                own->enable_sw_signaling();
                {
                    std::lock_guard guard(slots_lock);
                    slots[me] = own;
                }
                fencedep::fence_ref<> theirs;
                {
                    std::lock_guard guard(slots_lock);
                    theirs = slots[other];
                }
                if (pass == 0)
                    own->signal();
                flag_callback cb;
                const bool added = theirs && theirs->add_callback(cb, flag_callback::run) == 0;
                if (pass == 1)
                    own->signal();
                if (!theirs || !added) {
                    misses.fetch_add(1);
                } else {
                    theirs->wait();
                    {
                        fencedep::fence_lock_guard flush(*theirs);
                    }
                    if (!cb.seen.load())
                        failures.fetch_add(1);
                }
                {
                    std::lock_guard guard(slots_lock);
                    if (slots[me] == own)
                        slots[me].reset();
                }
                passes.fetch_add(1);
            }
        };
        std::thread a(worker, 0), b(worker, 1);
        std::this_thread::sleep_for(pass_time);
        stop.store(true);
        a.join();
        b.join();
        INFO("pass ", pass, ": ", passes.load(), " iterations, ", misses.load(), " misses");
        CHECK(failures.load() == 0);
        CHECK(passes.load() > 0);
    }
}

}  // TEST_SUITE
