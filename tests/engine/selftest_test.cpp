// SPDX-License-Identifier: MIT
// The kernel locking-selftest basic families (lockdep.md §5.3) for fencedep::spinlock and mutex.
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lettered_locks;
using engine_test::lock_unlock_pairs;

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

// A cycle family of the selftests, pairs of lock names standing for LU2: `order` is taken
// first; then the "closed" variant takes `closing` and must report the cycle `cycle`, and the
// "open" variant takes `open`, which agrees with the order, and must report nothing.
struct cycle_family {
    std::vector<std::string_view> order;
    std::string_view closing;
    const char* cycle;
    std::string_view open;
};

template <class Lock>
void check_cycle(const cycle_family& family) {
    capture cap;
    lettered_locks<Lock> l;
    lock_unlock_pairs(l, family.order);
    SUBCASE("closed") {
        lock_unlock_pairs(l, {family.closing});
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == family.cycle);
    }
    SUBCASE("open") {
        lock_unlock_pairs(l, {family.open});
        CHECK(cap.kinds() == "");
    }
}

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
    check_cycle<Lock>({.order = {"AB"}, .closing = "BA", .cycle = "B, A", .open = "AB"});
}

TEST_CASE_TEMPLATE("selftest ABBCCA", Lock, fencedep::spinlock, fencedep::mutex) {
    check_cycle<Lock>({.order = {"AB", "BC"}, .closing = "CA", .cycle = "C, B, A", .open = "AC"});
}

TEST_CASE_TEMPLATE("selftest ABCABC", Lock, fencedep::spinlock, fencedep::mutex) {
    check_cycle<Lock>({.order = {"AB", "CA"}, .closing = "BC", .cycle = "B, A, C", .open = "CB"});
}

TEST_CASE_TEMPLATE("selftest ABBCCDDA", Lock, fencedep::spinlock, fencedep::mutex) {
    check_cycle<Lock>(
        {.order = {"AB", "BC", "CD"}, .closing = "DA", .cycle = "D, C, B, A", .open = "AD"});
}

TEST_CASE_TEMPLATE("selftest ABCDBDDA", Lock, fencedep::spinlock, fencedep::mutex) {
    check_cycle<Lock>(
        {.order = {"AB", "CD", "BD"}, .closing = "DA", .cycle = "D, B, A", .open = "AD"});
}

TEST_CASE_TEMPLATE("selftest ABCDBCDA", Lock, fencedep::spinlock, fencedep::mutex) {
    check_cycle<Lock>(
        {.order = {"AB", "CD", "BC"}, .closing = "DA", .cycle = "D, C, B, A", .open = "AD"});
}

TEST_CASE_TEMPLATE("selftest double unlock", Lock, fencedep::spinlock, fencedep::mutex) {
    capture cap;
    lettered_locks<Lock> l;
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
