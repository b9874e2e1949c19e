// SPDX-License-Identifier: MIT
// Graph behaviour: shortest cycles, one report per cycle, trylock edges, out-of-order unlock.
#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lock_unlock_2;
using engine_test::lock_unlock_3;
using engine_test::lock_unlock_pairs;

// Six classes, A to E and X; every instance shares them.
using locks = engine_test::lettered_locks<fencedep::spinlock>;

TEST_SUITE("engine") {

TEST_CASE("the reported cycle is the shortest one") {
    capture cap;
    locks l;

    SUBCASE("a direct edge beside a longer path") {
        // The long path is recorded first, so a search that stops at the first path found
        // would print it.
        lock_unlock_pairs(l, {"AB", "BC", "CD", "AX", "XD", "AD"});
        REQUIRE(cap.kinds() == "");
        lock_unlock_2(l.d, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "D, A");
    }
    SUBCASE("two indirect paths") {
        lock_unlock_pairs(l, {"AB", "BC", "CD", "AE", "ED", "DA"});
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "D, E, A");
    }
    SUBCASE("edges that lead away from the held lock do not count") {
        lock_unlock_pairs(l, {"AX", "XE", "AB", "BC", "CA"});
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "C, B, A");
    }
}

TEST_CASE("each distinct cycle is reported once") {
    capture cap;
    locks l;
    for (int i = 0; i < 10; ++i) {
        lock_unlock_2(l.a, l.b);
        lock_unlock_2(l.b, l.a);
    }
    CHECK(cap.kinds() == "circular_dependency");
    CHECK(fencedep::splat_count() == 1);
}

// The graph's order lets a new edge skip the search when no path can close a cycle; a cycle
// through recursive readers is no deadlock and goes into the graph, so the graph is no DAG and
// the order must keep the searches that cycle needs.
TEST_CASE("a cycle through recursive readers keeps the searches for the cycles beside and through it") {
    capture cap;
    engine_test::lettered_locks<fencedep::rwlock> l;
    // A written then B read; B read then A read: readers never block recursive readers.
    l.a.lock();
    l.b.lock_shared();
    l.b.unlock_shared();
    l.a.unlock();
    l.b.lock_shared();
    l.a.lock_shared();
    l.a.unlock_shared();
    l.b.unlock_shared();
    REQUIRE(cap.kinds() == "");

    SUBCASE("an exclusive cycle elsewhere") {
        lock_unlock_2(l.c, l.d);
        lock_unlock_2(l.d, l.c);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "D, C");
    }
    SUBCASE("an exclusive cycle through the readers' cycle") {
        // A -(read)-> B -(write)-> E, then E -> A: B is left exclusively, so the path is strong.
        lock_unlock_2(l.b, l.e);
        lock_unlock_2(l.e, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "E, B, A");
    }
    SUBCASE("a writer inside the readers' cycle") {
        // B written under A: B -(read)-> A closes at A, which is held exclusively.
        lock_unlock_2(l.a, l.b);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "A, B");
    }
}

TEST_CASE("validation goes on after a report") {
    capture cap;
    locks l;
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.b, l.a);
    REQUIRE(cap.kinds() == "circular_dependency");

    lock_unlock_2(l.c, l.d);
    lock_unlock_2(l.d, l.c);
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(1)) == "D, C");

    l.e.lock();
    l.e.unlock();
    l.e.unlock();
    CHECK(cap.kinds() == "circular_dependency, circular_dependency, bad_unlock_balance");
    CHECK(fencedep::splat_count() == 3);
}

TEST_CASE("reset() forgets cached chains and key classes") {
    static fencedep::lock_class_key key;
    capture cap;
    locks l;
    fencedep::spinlock keyed{"keyed", key};
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.a, keyed);
    fencedep::reset();

    // A chain cached before the reset would let A then B through without recording A->B.
    lock_unlock_2(l.b, l.a);
    lock_unlock_2(keyed, l.a);
    REQUIRE(cap.kinds() == "");
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.a, keyed);
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(0)) == "A, B");
    CHECK(classes_of(cap.at(1)) == "A, keyed");
}

TEST_CASE("switching validation off and on starts from an empty held stack") {
    capture cap;
    locks l;
    l.a.lock();
    fencedep::enable(false);
    l.a.unlock();
    l.b.lock();
    fencedep::enable(true);
    CHECK_FALSE(l.b.map().held_by_this_thread());
    l.c.lock();
    l.c.unlock();
    fencedep::enable(false);
    l.b.unlock();
    fencedep::enable(true);

    // Neither A (released while off) nor B (taken while off) may have an edge to C.
    lock_unlock_2(l.c, l.a);
    lock_unlock_2(l.c, l.b);
    CHECK(cap.kinds() == "");
}

// The fast path does not look at the epoch: a thread whose held stack is from before the switch
// computes chain keys no cached chain has (initial_chain_key), so its next acquisition catches up
// on the slow path. Here the chain A -> B was cached before the switch and A was released while
// off: had B's acquisition hit that chain, the thread would hold a stale A beside B.
TEST_CASE("after switching off and on, no chain cached before the switch stands for the thread's new held stack") {
    capture cap;
    locks l;
    lock_unlock_2(l.a, l.b);
    l.a.lock();
    fencedep::enable(false);
    l.a.unlock();
    fencedep::enable(true);
    l.b.lock();
    // held_by_this_thread() answers only for a thread that caught up with the switch.
    CHECK(l.b.map().held_by_this_thread());
    CHECK_FALSE(l.a.map().held_by_this_thread());
    l.b.unlock();
    CHECK_FALSE(l.b.map().held_by_this_thread());
    lock_unlock_2(l.a, l.b);
    CHECK(cap.kinds() == "");
}

// Until its next acquisition, the thread's old stack still answers its releases: the lock on top
// was taken while validation was on, and its release is no bad unlock.
TEST_CASE("after switching off and on, releasing the lock taken before the switch is no bad unlock") {
    capture cap;
    locks l;
    l.a.lock();
    fencedep::enable(false);
    fencedep::enable(true);
    l.a.unlock();
    l.b.lock();
    CHECK(l.b.map().held_by_this_thread());
    CHECK_FALSE(l.a.map().held_by_this_thread());
    l.b.unlock();
    CHECK(cap.kinds() == "");
}

TEST_CASE("trylock rules (lockdep.md §1.8)") {
    capture cap;
    locks l;

    SUBCASE("a trylock adds no edge into the lock it takes") {
        l.a.lock();
        REQUIRE(l.b.try_lock());
        CHECK(l.b.map().held_by_this_thread());
        l.b.unlock();
        l.a.unlock();
        lock_unlock_2(l.b, l.a);
        CHECK(cap.kinds() == "");
    }
    SUBCASE("a trylock against the known order is not a cycle") {
        lock_unlock_2(l.a, l.b);
        l.b.lock();
        REQUIRE(l.a.try_lock());
        l.a.unlock();
        l.b.unlock();
        CHECK(cap.kinds() == "");
    }
    SUBCASE("a trylock of a second instance of a held class is not recursive locking") {
        locks other;
        l.a.lock();
        REQUIRE(other.a.try_lock());
        other.a.unlock();
        l.a.unlock();
        CHECK(cap.kinds() == "");
    }
    SUBCASE("edges out of a held trylock are recorded") {
        REQUIRE(l.a.try_lock());
        l.b.lock();
        l.b.unlock();
        l.a.unlock();
        CHECK(cap.kinds() == "");
        lock_unlock_2(l.b, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "B, A");
    }
    SUBCASE("held [A, trylock-B] then C records B->C and A->C") {
        l.a.lock();
        REQUIRE(l.b.try_lock());
        l.c.lock();
        l.c.unlock();
        l.b.unlock();
        l.a.unlock();
        REQUIRE(cap.kinds() == "");

        SUBCASE("C then A closes A->C") {
            lock_unlock_2(l.c, l.a);
            REQUIRE(cap.kinds() == "circular_dependency");
            CHECK(classes_of(cap.at(0)) == "C, A");
        }
        SUBCASE("C then B closes B->C") {
            lock_unlock_2(l.c, l.b);
            REQUIRE(cap.kinds() == "circular_dependency");
            CHECK(classes_of(cap.at(0)) == "C, B");
        }
    }
    SUBCASE("held [A, B] then C records only B->C: the cycle through A goes via B") {
        lock_unlock_3(l.a, l.b, l.c);
        lock_unlock_2(l.c, l.a);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "C, B, A");
    }
}

TEST_CASE("out-of-order unlock is accepted") {
    capture cap;
    locks l;

    SUBCASE("A, B; unlock A, then B") {
        l.a.lock();
        l.b.lock();
        l.a.unlock();
        CHECK_FALSE(l.a.map().held_by_this_thread());
        CHECK(l.b.map().held_by_this_thread());
        l.b.unlock();
        CHECK_FALSE(l.b.map().held_by_this_thread());
        lock_unlock_2(l.a, l.b);
        CHECK(cap.kinds() == "");
    }
    SUBCASE("a lock released early gets no edge to later locks") {
        // B is a trylock, so while A was held it would have had the edge A->C as well (§1.5);
        // with A gone, only B->C may be recorded.
        l.a.lock();
        REQUIRE(l.b.try_lock());
        l.a.unlock();
        l.c.lock();
        l.c.unlock();
        l.b.unlock();
        lock_unlock_2(l.c, l.a);
        CHECK(cap.kinds() == "");
        lock_unlock_2(l.c, l.b);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "C, B");
    }
    SUBCASE("the held stack stays consistent") {
        l.a.lock();
        l.b.lock();
        l.c.lock();
        l.b.unlock();
        l.a.unlock();
        CHECK(l.c.map().held_by_this_thread());
        CHECK_FALSE(l.a.map().held_by_this_thread());
        l.c.unlock();
        l.a.lock();
        l.a.unlock();
        CHECK(cap.kinds() == "");
    }
    SUBCASE("unlocking the bottom lock twice is still caught") {
        l.a.lock();
        l.b.lock();
        l.a.unlock();
        l.a.map().release();
        l.b.unlock();
        CHECK(cap.kinds() == "bad_unlock_balance");
    }
}

}  // TEST_SUITE
