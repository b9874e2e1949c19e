// SPDX-License-Identifier: MIT
// fencedep::condition_variable over std::unique_lock<fencedep::mutex>: real waits and
// notifications, and a wait as a release and blocking reacquisition of the mutex.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "../engine/capture.h"
#include "../watchdog.h"
#include "sync_test.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lock_unlock_2;
using sync_test::free_for_another_thread;
using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;

TEST_SUITE("sync") {

TEST_CASE("producer and consumer through a bounded queue") {
    capture cap;
    SUBCASE("validated") {}
    SUBCASE("fencedep off") { fencedep::enable(false); }
    const fencedep::testing::watchdog watch(20s, "producer and consumer");
    fencedep::mutex lock{"queue->lock"};
    fencedep::condition_variable not_empty;
    fencedep::condition_variable not_full;
    std::deque<int> queue;
    constexpr int items = 2000;
    constexpr std::size_t capacity = 4;
    std::thread producer([&] {
        for (int i = 1; i <= items; ++i) {
            {
                std::unique_lock guard(lock);
                not_full.wait(guard, [&] { return queue.size() < capacity; });
                queue.push_back(i);
            }
            not_empty.notify_one();
        }
    });
    long sum = 0;
    for (int i = 1; i <= items; ++i) {
        {
            std::unique_lock guard(lock);
            not_empty.wait(guard, [&] { return !queue.empty(); });
            sum += queue.front();
            queue.pop_front();
        }
        not_full.notify_all();
    }
    producer.join();
    CHECK(sum == long{items} * (items + 1) / 2);
    CHECK_FALSE(lock.map().held_by_this_thread());
    CHECK(cap.kinds() == "");
}

TEST_CASE("a lock held across a wait is ordered before the wait's mutex") {
    capture cap;
    fencedep::mutex m{"M"};
    fencedep::mutex l{"L"};
    fencedep::condition_variable cv;
    {
        std::unique_lock guard(m);
        // Under M, but as a trylock: no M -> L. Only the reacquisition orders the two.
        REQUIRE(l.try_lock());
        CHECK(cv.wait_for(guard, 1ms) == std::cv_status::timeout);
        l.unlock();
    }
    CHECK(cap.kinds() == "");
    std::thread([&] { lock_unlock_2(m, l); }).join();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "M, L");
}

TEST_CASE("a reacquisition that closes a cycle is reported before the thread waits") {
    capture cap;
    const fencedep::testing::watchdog watch(30s, "report before the wait");
    fencedep::mutex m{"M"};
    fencedep::mutex l{"L"};
    fencedep::condition_variable cv;
    bool ready = false;
    bool reported_before_wake = false;
    std::unique_lock guard(m);
    l.lock();  // M -> L
    // The notifier wakes the waiter once the report is in, or after 10 s if it never comes.
    std::thread notifier([&] {
        reported_before_wake = cap.wait_for(1, 10s);
        {
            const std::lock_guard g(m);
            ready = true;
        }
        cv.notify_all();
    });
    cv.wait(guard, [&] { return ready; });  // L held: the reacquisition is L -> M
    l.unlock();
    guard.unlock();
    notifier.join();
    CHECK(reported_before_wake);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "L, M");
}

TEST_CASE("predicate waits") {
    capture cap;
    fencedep::mutex m{"M"};
    fencedep::condition_variable cv;
    std::unique_lock guard(m);
    bool ready = false;
    bool held_in_predicate = true;
    const auto is_ready = [&] {
        held_in_predicate = held_in_predicate && m.map().held_by_this_thread();
        return ready;
    };

    SUBCASE("a predicate already true returns at once") {
        ready = true;
        const fencedep::testing::watchdog watch(20s, "a predicate already true");
        cv.wait(guard, is_ready);
        CHECK(cv.wait_for(guard, 1h, is_ready));
        CHECK(cv.wait_until(guard, steady_clock::now() + 1h, is_ready));
    }
    SUBCASE("a predicate that stays false times out") {
        CHECK_FALSE(cv.wait_for(guard, 5ms, is_ready));
        CHECK_FALSE(cv.wait_until(guard, steady_clock::now() + 5ms, is_ready));
        CHECK_FALSE(cv.wait_until(guard, system_clock::now() + 5ms, is_ready));
    }
    SUBCASE("a predicate made true by another thread ends the wait") {
        std::thread notifier([&] {
            {
                const std::lock_guard g(m);
                ready = true;
            }
            cv.notify_one();
        });
        CHECK(cv.wait_for(guard, 10s, is_ready));
        notifier.join();
    }
    CHECK(held_in_predicate);
    CHECK(guard.owns_lock());
    CHECK(m.map().held_by_this_thread());
    guard.unlock();
    CHECK_FALSE(m.map().held_by_this_thread());
    CHECK(cap.kinds() == "");
}

TEST_CASE("a wait that times out returns with the mutex held, in fact and to the validator") {
    capture cap;
    fencedep::mutex outer{"outer"};
    fencedep::mutex m{"M"};
    fencedep::condition_variable cv;
    outer.lock();
    std::unique_lock guard(m);
    SUBCASE("wait_for") { CHECK(cv.wait_for(guard, 5ms) == std::cv_status::timeout); }
    SUBCASE("wait_until") { CHECK(cv.wait_until(guard, steady_clock::now() + 5ms) == std::cv_status::timeout); }
    CHECK(guard.owns_lock());
    CHECK(m.map().held_by_this_thread());
    CHECK(outer.map().held_by_this_thread());
    CHECK_FALSE(free_for_another_thread(m));
    guard.unlock();
    CHECK_FALSE(m.map().held_by_this_thread());
    CHECK(free_for_another_thread(m));
    outer.unlock();
    CHECK(cap.kinds() == "");
}

}  // TEST_SUITE
