// SPDX-License-Identifier: MIT
// fencedep::recursive_mutex: lockdep-style recursion (the owner re-locks an instance silently,
// a second instance of the class is recursive locking) and unlocks by a thread that is no owner.
#include <string>
#include <thread>

#include "../engine/capture.h"
#include "sync_test.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lock_unlock_2;
using sync_test::free_for_another_thread;

namespace {

struct node {
    fencedep::recursive_mutex lock{"node->lock"};
};

}  // namespace

TEST_SUITE("sync") {

TEST_CASE("re-locking an owned recursive_mutex is silent, and only the outermost unlock releases it") {
    capture cap;
    fencedep::recursive_mutex r{"R"};
    r.lock();
    r.lock();
    CHECK(r.try_lock());
    r.lock_nested(1);
    for (int level = 0; level < 3; ++level) {
        r.unlock();
        CHECK(r.map().held_by_this_thread());
    }
    CHECK_FALSE(free_for_another_thread(r));
    r.unlock();
    CHECK_FALSE(r.map().held_by_this_thread());
    CHECK(free_for_another_thread(r));
    CHECK(cap.kinds() == "");
}

TEST_CASE("two instances of one recursive_mutex class") {
    capture cap;
    node first;
    node second;

    SUBCASE("nested: recursive locking of the class") {
        lock_unlock_2(first.lock, second.lock);
        REQUIRE(cap.kinds() == "recursive_locking");
        CHECK(classes_of(cap.at(0)) == "node->lock, node->lock");
    }
    SUBCASE("nested with lock_nested(1), the first re-locked under the second: silent") {
        first.lock.lock();
        second.lock.lock_nested(1);
        first.lock.lock();
        first.lock.unlock();
        second.lock.unlock();
        first.lock.unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("ABBA across a recursive_mutex and a mutex") {
    capture cap;
    fencedep::recursive_mutex r{"R"};
    fencedep::mutex m{"M"};
    lock_unlock_2(r, m);
    lock_unlock_2(m, r);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "M, R");
}

TEST_CASE("unlock() of a recursive_mutex by a thread that does not own it is reported and ignored") {
    capture cap;
    fencedep::recursive_mutex r{"R"};

    SUBCASE("held by another thread") {
        r.lock();
        r.lock();
        std::thread([&] { r.unlock(); }).join();
        REQUIRE(cap.kinds() == "bad_unlock_balance");
        CHECK(classes_of(cap.at(0)) == "R");
        // The owner keeps the lock and its depth.
        CHECK(r.map().held_by_this_thread());
        r.unlock();
        CHECK_FALSE(free_for_another_thread(r));
        r.unlock();
        CHECK(free_for_another_thread(r));
        CHECK(cap.kinds() == "bad_unlock_balance");
    }
    SUBCASE("not held at all") {
        r.unlock();
        REQUIRE(cap.kinds() == "bad_unlock_balance");
        CHECK(classes_of(cap.at(0)) == "R");
        CHECK(free_for_another_thread(r));
        r.lock();
        r.unlock();
        CHECK(cap.kinds() == "bad_unlock_balance");
    }
    SUBCASE("with fencedep off: not reported, and still ignored") {
        fencedep::enable(false);
        r.lock();
        std::thread([&] { r.unlock(); }).join();
        CHECK_FALSE(free_for_another_thread(r));
        r.unlock();
        CHECK(free_for_another_thread(r));
        CHECK(cap.kinds() == "");
    }
}

}  // TEST_SUITE
