// SPDX-License-Identifier: MIT
// fencedep::shared_mutex, shared_timed_mutex and rwlock: through the standard guards, readers
// recorded as their type's readers, nesting annotations, and rwlock for real on threads (data
// integrity, and reader preference: a reader never waits for a waiting writer).
#include <atomic>
#include <latch>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "../engine/capture.h"
#include "../watchdog.h"
#include "sync_test.h"

using engine_test::capture;
using engine_test::classes_of;
using sync_test::free_for_another_reader;
using sync_test::free_for_another_thread;
using namespace std::chrono_literals;

namespace {

template <class Lock>
struct node {
    Lock lock{"node->lock"};
};

}  // namespace

TEST_SUITE("sync") {

TEST_CASE_TEMPLATE("std::shared_lock, std::unique_lock and std::scoped_lock take the real lock as a reader or a writer",
                   Lock, fencedep::shared_mutex, fencedep::shared_timed_mutex, fencedep::rwlock) {
    capture cap;
    Lock lock{"L"};
    fencedep::mutex other{"M"};
    {
        const std::shared_lock read(lock);
        CHECK(lock.map().held_by_this_thread());
        CHECK(free_for_another_reader(lock));
        CHECK_FALSE(free_for_another_thread(lock));
    }
    {
        const std::unique_lock write(lock);
        CHECK(lock.map().held_by_this_thread());
        CHECK_FALSE(free_for_another_reader(lock));
    }
    {
        const std::scoped_lock both(lock, other);
        CHECK(lock.map().held_by_this_thread());
        CHECK(other.map().held_by_this_thread());
        CHECK_FALSE(free_for_another_reader(lock));
    }
    {
        const std::shared_lock read(lock, std::try_to_lock);
        CHECK(read.owns_lock());
        CHECK(lock.map().held_by_this_thread());
    }
    CHECK_FALSE(lock.map().held_by_this_thread());
    CHECK(free_for_another_thread(lock));
    CHECK(cap.kinds() == "");
}

TEST_CASE_TEMPLATE("a reader inversion through std::shared_lock: a cycle for shared_mutex readers, none for rwlock's",
                   Lock, fencedep::shared_mutex, fencedep::shared_timed_mutex, fencedep::rwlock) {
    constexpr bool recursive_readers = std::is_same_v<Lock, fencedep::rwlock>;
    capture cap;
    Lock lock{"L"};
    fencedep::mutex other{"M"};
    {
        const std::shared_lock read(lock);
        const std::lock_guard guard(other);
    }
    {
        const std::lock_guard guard(other);
        const std::shared_lock read(lock);
    }
    if (recursive_readers) {
        CHECK(cap.kinds() == "");
    } else {
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "M, L");
    }
    // A writer under M closes the cycle for every type (shared_mutex's was reported already).
    {
        const std::lock_guard guard(other);
        const std::unique_lock write(lock);
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "M, L");
}

TEST_CASE_TEMPLATE("lock_nested and lock_shared_nested teach a parent-then-child order", Lock,
                   fencedep::shared_mutex, fencedep::shared_timed_mutex, fencedep::rwlock) {
    capture cap;
    node<Lock> parent;
    node<Lock> child;

    SUBCASE("writer, then a reader of subclass 1") {
        parent.lock.lock();
        child.lock.lock_shared_nested(1);
        child.lock.unlock_shared();
        parent.lock.unlock();
        CHECK(cap.kinds() == "");
    }
    SUBCASE("reader, then a writer of subclass 1") {
        parent.lock.lock_shared();
        child.lock.lock_nested(1);
        child.lock.unlock();
        parent.lock.unlock_shared();
        CHECK(cap.kinds() == "");
    }
    SUBCASE("without the annotation: recursive locking of the class") {
        parent.lock.lock();
        child.lock.lock_shared();
        child.lock.unlock_shared();
        parent.lock.unlock();
        REQUIRE(cap.kinds() == "recursive_locking");
        CHECK(classes_of(cap.at(0)) == "node->lock, node->lock");
    }
    SUBCASE("a subclass above 7") {
        parent.lock.lock_shared_nested(8);
        parent.lock.unlock_shared();
        CHECK(cap.kinds() == "invalid_subclass");
    }
}

TEST_CASE("rwlock: readers and writers on threads see whole writes, and readers read recursively") {
    capture cap;
    SUBCASE("validated") {}
    SUBCASE("fencedep off") { fencedep::enable(false); }
    const fencedep::testing::watchdog watch(60s, "rwlock readers and writers");
    fencedep::rwlock lock{"table_lock"};
    // Writers keep the two halves equal; a reader that finds them different saw half a write.
    long first = 0;
    long second = 0;
    constexpr int writers = 2;
    constexpr int readers = 3;
    constexpr int rounds = 20000;
    std::atomic<int> torn{0};
    std::latch start(writers + readers);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&] {
            start.arrive_and_wait();
            for (int i = 0; i < rounds; ++i) {
                const std::unique_lock write(lock);
                ++first;
                ++second;
            }
        });
    for (int r = 0; r < readers; ++r)
        threads.emplace_back([&, r] {
            start.arrive_and_wait();
            for (int i = 0; i < rounds; ++i) {
                std::shared_lock read(lock, std::defer_lock);
                // One reader polls with try_lock_shared, the others wait in lock_shared.
                if (r == 0)
                    while (!read.try_lock())
                        std::this_thread::yield();
                else
                    read.lock();
                // Reading again while writers wait: a writer-preferring lock would deadlock here.
                const std::shared_lock again(lock);
                if (first != second)
                    ++torn;
            }
        });
    for (auto& thread : threads)
        thread.join();
    CHECK(first == long{writers} * rounds);
    CHECK(second == first);
    CHECK(torn == 0);
    CHECK(cap.kinds() == "");
}

TEST_CASE("rwlock: a reader gets in while a writer waits") {
    capture cap;
    const fencedep::testing::watchdog watch(30s, "rwlock reader preference");
    fencedep::rwlock lock{"rw"};
    std::atomic<bool> writer_started{false};
    std::atomic<bool> writer_in{false};
    lock.lock_shared();
    std::thread writer([&] {
        writer_started = true;
        lock.lock();
        writer_in = true;
        lock.unlock();
    });
    while (!writer_started)
        std::this_thread::yield();
    // From here the writer is in lock() or about to be, and cannot get in while this thread
    // reads; new readers on other threads, waiting or trying, get in all the same, each time.
    for (int i = 0; i < 100; ++i) {
        bool writer_was_in = true;
        std::thread([&] {
            const std::shared_lock read(lock);
            writer_was_in = writer_in;
        }).join();
        CHECK_FALSE(writer_was_in);
        CHECK(free_for_another_reader(lock));
    }
    CHECK_FALSE(writer_in);
    lock.unlock_shared();
    writer.join();
    CHECK(writer_in);
    CHECK(cap.kinds() == "");
}

}  // TEST_SUITE
