// SPDX-License-Identifier: MIT
// The kernel locking-selftest basic families (lockdep.md §5.3) for fencedep::spinlock and mutex.
#include <memory>
#include <type_traits>

#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lock_unlock_2;

namespace {

// One construction site for every lock it makes, so that they are instances of one class: the
// selftests' X1/X2 (lockdep.md §5.2).
template <class Lock>
std::unique_ptr<Lock> make_x() {
    return std::unique_ptr<Lock>(new Lock("X"));
}

// Releases a lock a second time. A std::mutex may not be unlocked when not locked, so the
// mutex column sends the second release to the validator only; the spinlock column does it for
// real, as the kernel selftest does.
template <class Lock>
void unlock_again(Lock& lock) {
    if constexpr (std::is_same_v<Lock, fencedep::spinlock>)
        lock.unlock();
    else
        lock.map().release();
}

// Takes a lock that is about to be destroyed. Destroying a locked std::mutex is undefined, so
// the mutex column holds it in the validator only; the destructor path checked is the same.
template <class Lock>
void hold_for_destruction(Lock& lock) {
    if constexpr (std::is_same_v<Lock, fencedep::spinlock>)
        lock.lock();
    else
        lock.map().acquire();
}

// Four classes, each constructed on a line of its own (a class is a construction line).
template <class Lock>
struct abcd {
    Lock a{"A"};
    Lock b{"B"};
    Lock c{"C"};
    Lock d{"D"};
};

}  // namespace

TEST_SUITE("engine") {

TEST_CASE_TEMPLATE("selftest AA: two instances of one class nest", Lock, fencedep::spinlock,
                   fencedep::mutex) {
    capture cap;
    auto x1 = make_x<Lock>();
    auto x2 = make_x<Lock>();

    SUBCASE("LOCK(X1); LOCK(X2) is recursive locking") {
        x1->lock();
        x2->lock();
        x2->unlock();
        x1->unlock();
        REQUIRE(cap.kinds() == "recursive_locking");
        const auto r = cap.at(0);
        REQUIRE(!r.classes.empty());
        CHECK(r.classes.front() == "X");
    }
    SUBCASE("LOCK(X1); UNLOCK(X1); LOCK(X2); UNLOCK(X2) is fine") {
        x1->lock();
        x1->unlock();
        x2->lock();
        x2->unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest ABBA", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    abcd<Lock> l;
    lock_unlock_2(l.a, l.b);
    SUBCASE("closed") {
        lock_unlock_2(l.b, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "B, A");
    }
    SUBCASE("open") {
        lock_unlock_2(l.a, l.b);
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest ABBCCA", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    abcd<Lock> l;
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.b, l.c);
    SUBCASE("closed") {
        lock_unlock_2(l.c, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "C, B, A");
    }
    SUBCASE("open") {
        lock_unlock_2(l.a, l.c);
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest ABCABC", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    abcd<Lock> l;
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.c, l.a);
    SUBCASE("closed") {
        lock_unlock_2(l.b, l.c);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "B, A, C");
    }
    SUBCASE("open") {
        lock_unlock_2(l.c, l.b);
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest ABBCCDDA", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    abcd<Lock> l;
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.b, l.c);
    lock_unlock_2(l.c, l.d);
    SUBCASE("closed") {
        lock_unlock_2(l.d, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "D, C, B, A");
    }
    SUBCASE("open") {
        lock_unlock_2(l.a, l.d);
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest ABCDBDDA", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    abcd<Lock> l;
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.c, l.d);
    lock_unlock_2(l.b, l.d);
    SUBCASE("closed") {
        lock_unlock_2(l.d, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "D, B, A");
    }
    SUBCASE("open") {
        lock_unlock_2(l.a, l.d);
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest ABCDBCDA", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    abcd<Lock> l;
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.c, l.d);
    lock_unlock_2(l.b, l.c);
    SUBCASE("closed") {
        lock_unlock_2(l.d, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "D, C, B, A");
    }
    SUBCASE("open") {
        lock_unlock_2(l.a, l.d);
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest double unlock", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    abcd<Lock> l;
    l.a.lock();
    l.a.unlock();
    SUBCASE("UNLOCK(A) again is a bad unlock balance") {
        unlock_again(l.a);
        REQUIRE(cap.kinds() == "bad_unlock_balance");
        CHECK(classes_of(cap.at(0)) == "A");
    }
    SUBCASE("LOCK(A); UNLOCK(A) again is fine") {
        l.a.lock();
        l.a.unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE_TEMPLATE("selftest init/destroy held", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    auto a = std::unique_ptr<Lock>(new Lock("A"));
    SUBCASE("destroying a held lock is a held lock freed") {
        hold_for_destruction(*a);
        a.reset();
        REQUIRE(cap.kinds() == "held_lock_freed");
        CHECK(classes_of(cap.at(0)) == "A");
    }
    SUBCASE("destroying a released lock is fine") {
        a->lock();
        a->unlock();
        a.reset();
        CHECK(cap.kinds() == "");
    }
}

}  // TEST_SUITE
