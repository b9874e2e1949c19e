// SPDX-License-Identifier: MIT
// Declared orders: bless_order() (a pair that may nest either way) and forget() (a class whose
// learned order is dropped), with the exact reports that remain.
#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lock_unlock_2;
using engine_test::lock_unlock_3;
using engine_test::lock_unlock_pairs;

// Six classes, A to E and X; every instance shares them.
using locks = engine_test::lettered_locks<fencedep::spinlock>;

namespace {

// Three keyed classes. Blessings outlive reset() and name keys by address, so each case declares
// its own static instance: keys on the stack would reuse one address from case to case.
struct keyed {
    fencedep::lock_class_key ka, kb, kc;
    fencedep::mutex a{"bless_a", ka};
    fencedep::mutex b{"bless_b", kb};
    fencedep::mutex c{"bless_c", kc};
};

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("a blessed pair is taken in both orders without a report") {
    capture cap;
    SUBCASE("blessed before either order is seen") {
        static keyed k;
        fencedep::bless_order(k.ka, k.kb);
        lock_unlock_2(k.a, k.b);
        lock_unlock_2(k.b, k.a);
    }
    SUBCASE("blessed after one order was learned: the learned edge is dropped") {
        static keyed k;
        lock_unlock_2(k.a, k.b);
        fencedep::bless_order(k.kb, k.ka);
        lock_unlock_2(k.b, k.a);
        lock_unlock_2(k.a, k.b);
    }
    CHECK(cap.kinds() == "");
    CHECK(fencedep::splat_count() == 0);
}

TEST_CASE("a cycle through a blessed pair is not reported; without the blessing it is") {
    capture cap;
    SUBCASE("blessed") {
        static keyed k;
        fencedep::bless_order(k.ka, k.kb);
        lock_unlock_2(k.b, k.c);
        lock_unlock_2(k.c, k.a);
        lock_unlock_2(k.a, k.b);
        CHECK(cap.kinds() == "");
    }
    SUBCASE("not blessed") {
        static keyed k;
        lock_unlock_2(k.b, k.c);
        lock_unlock_2(k.c, k.a);
        lock_unlock_2(k.a, k.b);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "bless_a, bless_c, bless_b");
    }
}

TEST_CASE("a lock held below a blessed pair is still ordered before both") {
    capture cap;
    static keyed k;
    fencedep::bless_order(k.ka, k.kb);
    // c, then a, then b: a->b is blessed, so the walk goes on to c and records c->b.
    k.c.lock();
    lock_unlock_2(k.a, k.b);
    k.c.unlock();
    CHECK(cap.kinds() == "");
    lock_unlock_2(k.b, k.c);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "bless_b, bless_c");
}

TEST_CASE("blessing leaves recursive locking alone") {
    capture cap;
    static keyed k;
    fencedep::mutex a2{"bless_a", k.ka};
    fencedep::bless_order(k.ka, k.kb);
    lock_unlock_2(k.a, a2);
    REQUIRE(cap.kinds() == "recursive_locking");
    CHECK(classes_of(cap.at(0)) == "bless_a, bless_a");
}

TEST_CASE("after forget() the old order is not remembered, and the opposite order is no splat") {
    capture cap;
    locks l;
    lock_unlock_2(l.a, l.b);
    fencedep::forget(l.a);
    lock_unlock_2(l.b, l.a);
    CHECK(cap.kinds() == "");
    // The new order is learned: the first order is now the inversion. The chain a, b was cached
    // before forget(); had it stayed cached, this acquisition would skip the search.
    lock_unlock_2(l.a, l.b);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "A, B");
}

TEST_CASE("forget() drops the edges into and out of its class, not those of other classes") {
    capture cap;
    locks l;
    lock_unlock_pairs(l, {"XA", "AB", "CD"});
    fencedep::forget(l.a.map());
    lock_unlock_pairs(l, {"AX", "BA"});
    CHECK(cap.kinds() == "");
    lock_unlock_2(l.d, l.c);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "D, C");
}

TEST_CASE("a cycle reported before forget() is reported again when the inversion is learned again") {
    capture cap;
    locks l;
    lock_unlock_pairs(l, {"AB", "BA"});
    REQUIRE(cap.kinds() == "circular_dependency");
    fencedep::forget(l.a);
    // The object moved to a new owner and is misused there: the same inversion, learned anew.
    lock_unlock_pairs(l, {"AB", "BA"});
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(0)) == "B, A");
    CHECK(classes_of(cap.at(1)) == "B, A");
    // Once again, the repeat is deduplicated.
    lock_unlock_2(l.b, l.a);
    CHECK(cap.kinds() == "circular_dependency, circular_dependency");
}

TEST_CASE("a cycle through the forgotten class and others is reported again; one between other classes is not") {
    capture cap;
    locks l;
    lock_unlock_pairs(l, {"AB", "BC", "CA", "DE", "ED"});
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(0)) == "C, B, A");
    CHECK(classes_of(cap.at(1)) == "E, D");
    fencedep::forget(l.b);
    lock_unlock_pairs(l, {"AB", "BC", "CA", "ED"});
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(2)) == "C, B, A");
}

TEST_CASE("forget() keeps the reports that do not depend on a learned order: recursive locking stays reported once") {
    capture cap;
    locks l;
    locks other;
    lock_unlock_2(l.a, other.a);
    REQUIRE(cap.kinds() == "recursive_locking");
    fencedep::forget(l.a);
    lock_unlock_2(l.a, other.a);
    CHECK(cap.kinds() == "recursive_locking");
}

TEST_CASE("forget() of a lock whose class was never taken changes nothing") {
    capture cap;
    locks l;
    fencedep::spinlock never{"never taken"};
    lock_unlock_2(l.a, l.b);
    fencedep::forget(never);
    lock_unlock_2(l.b, l.a);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "B, A");
}

}  // TEST_SUITE
