// SPDX-License-Identifier: MIT
// Verdicts after the first report: every dependency is still recorded once an edge was refused,
// a recursion was reported, or a lock held around deferred work was released inside it.
#include <pthread.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::contains;
using fencedep::context_frame;
using fencedep::context_scope;
using fencedep::fence_op;
using fencedep::lock_map;

namespace {
// Pseudo-locks: the validator's view only, so that orders that would hang real locks are safe.
struct abc {
    lock_map a{"A"};
    lock_map b{"B"};
    lock_map c{"C"};
    lock_map t{"T"};
};

// Takes x then y, and releases both.
void lock_unlock_2(lock_map& x, lock_map& y) {
    x.acquire();
    y.acquire();
    y.release();
    x.release();
}
}  // namespace

TEST_SUITE("fidelity after a report") {

TEST_CASE("a refused edge does not lose the dependencies of the locks below it") {
    capture cap;
    abc l;
    lock_unlock_2(l.c, l.b);  // C -> B
    l.a.acquire();
    l.b.acquire();  // A -> B
    l.c.acquire();  // B -> C closes {B, C}
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "B, C");
    l.c.release();
    l.b.release();
    l.a.release();
    // A thread holding A waits for C above; one holding C and waiting for A deadlocks with it.
    lock_unlock_2(l.c, l.a);
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(1)) == "C, A");
}

TEST_CASE("a refused edge above a trylock does not lose the dependencies below the trylock") {
    capture cap;
    abc l;
    lock_unlock_2(l.c, l.b);  // C -> B
    l.a.acquire();
    l.b.try_acquire();
    l.c.acquire();  // B -> C closes {B, C}; A -> C is still a dependency
    l.c.release();
    l.b.release();
    l.a.release();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "B, C");
    lock_unlock_2(l.c, l.a);
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(1)) == "C, A");
}

TEST_CASE("a cycle that needs an edge already reported stays silent, as the README says") {
    capture cap;
    abc l;
    lock_unlock_2(l.c, l.b);  // C -> B
    lock_unlock_2(l.b, l.c);  // B -> C closes {B, C}: reported, not added
    lock_unlock_2(l.a, l.b);  // A -> B
    lock_unlock_2(l.c, l.a);  // C -> A -> B -> C would need B -> C
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "B, C");
}

TEST_CASE("after a recursion report, the locks below the recursive one still get their dependencies") {
    capture cap;
    abc l;
    static fencedep::lock_class_key a_key;
    lock_map first{"A", a_key};
    lock_map second{"A", a_key};
    first.acquire();
    l.t.acquire();    // A -> T
    second.acquire(); // recursion: records nothing, so T -> A is not there to carry T -> C
    l.c.acquire();    // A -> C, and T -> C must be recorded too
    l.c.release();
    second.release();
    l.t.release();
    first.release();
    REQUIRE(cap.kinds() == "recursive_locking");
    lock_unlock_2(l.c, l.t);
    REQUIRE(cap.kinds() == "recursive_locking, circular_dependency");
    CHECK(classes_of(cap.at(1)) == "C, T");
}

TEST_CASE("an acquisition whose cached chain was left uncovered records the lower dependencies again") {
    // The second round takes the chain cache's fast path: the chain must remember that the lock
    // on top was not covered, so that the next acquisition walks past it again.
    capture cap;
    abc l;
    lock_map d{"D"};
    lock_unlock_2(l.c, l.b);  // C -> B
    for (int round = 0; round < 2; ++round) {
        l.a.acquire();
        l.b.acquire();
        l.c.acquire();  // refused in round 0; cached as uncovered
        if (round == 1)
            d.acquire();  // a new chain: C -> D, and B -> D past the uncovered C
        if (round == 1)
            d.release();
        l.c.release();
        l.b.release();
        l.a.release();
    }
    REQUIRE(cap.kinds() == "circular_dependency");
    // B never reached C (its edge was refused), so only the walk past C gives it B -> D.
    lock_unlock_2(d, l.b);
    REQUIRE(cap.kinds() == "circular_dependency, circular_dependency");
    CHECK(classes_of(cap.at(1)) == "D, B");
}

namespace {
const context_frame deferred{fence_op::deferred_work, "fence_array", "array", "unbound", 9, 1};
}

TEST_CASE("a lock held around deferred work and released inside it moves the segment's base") {
    capture cap;
    abc l;
    l.a.acquire();
    {
        context_scope work(deferred);
        l.a.release();
        lock_unlock_2(l.b, l.c);  // B -> C, inside the segment
    }
    CHECK(cap.kinds() == "");
    lock_unlock_2(l.c, l.b);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "C, B");
}

TEST_CASE("a segment that ends after its enclosing lock was released leaves a key without that lock") {
    capture cap;
    abc l;
    std::thread([&] {
        l.a.acquire();
        {
            context_scope work(deferred);
            l.a.release();
        }
        // Nothing is held: B's chain is {B}, and must not be cached as {A, B}.
        l.b.acquire();
        l.b.release();
    }).join();
    // Had {A, B} been cached above, another thread's A then B would take the fast path and
    // record no A -> B.
    lock_unlock_2(l.a, l.b);
    lock_unlock_2(l.b, l.a);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "B, A");
}

TEST_CASE("max_lock_depth is reported once per process, however often a thread goes past it") {
    capture cap;
    constexpr unsigned default_depth = 48;
    static std::array<fencedep::lock_class_key, default_depth + 1> keys;
    std::vector<std::unique_ptr<lock_map>> locks;
    for (auto& key : keys)
        locks.push_back(std::make_unique<lock_map>("deep", key));
    auto round = [&] {
        for (auto& lock : locks)
            lock->acquire();
        for (auto it = locks.rbegin(); it != locks.rend(); ++it)
            (*it)->release();
    };
    for (int i = 0; i < 100; ++i)
        round();
    std::thread other(round);
    other.join();
    CHECK(cap.kinds() == "lock_depth_exceeded");
    // The locks past the limit were counted: every release matched, no bad unlock.
    CHECK(fencedep::splat_count() == 1);
}

TEST_CASE("context lines show the whole stack of operations, outermost first") {
    capture cap;
    abc l;
    const context_frame frames[] = {
        {fence_op::enable_signaling, "fence_chain", "chain", "unbound", 12, 7},
        {fence_op::enable_signaling, "fence_array", "array", "unbound", 9, 1},
        {fence_op::add_callback, "fence", "gpu", "ring0", 3, 4},
        {fence_op::signal_callback, "fence", "gpu", "ring0", 3, 4},
        {fence_op::add_callback, "fence", "gpu", "ring1", 5, 6},
    };
    {
        context_scope f0(frames[0]);
        context_scope f1(frames[1]);
        context_scope f2(frames[2]);
        context_scope f3(frames[3]);
        context_scope f4(frames[4]);
        lock_unlock_2(l.a, l.b);
    }
    lock_unlock_2(l.b, l.a);
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    CHECK(r.contexts.at(0) ==
          "enabling signaling on fence_chain 'chain' ctx 12 seqno 7, enabling signaling on fence_array 'array' ctx 9 "
          "seqno 1, adding a callback to fence 'ring0' ctx 3 seqno 4, running a signal callback of fence 'ring0' ctx "
          "3 seqno 4, adding a callback to fence 'ring1' ctx 5 seqno 6");
}

namespace {
// Pushes `depth` nested frames, the outermost first, and takes A then B inside them all.
void nested_frames(unsigned depth, abc& l) {
    if (depth == 0) {
        lock_unlock_2(l.a, l.b);
        return;
    }
    const context_frame frame{fence_op::signal_callback, "fence", "gpu", "ring", depth, 1};
    const context_scope scope(frame);
    nested_frames(depth - 1, l);
}
}  // namespace

TEST_CASE("operations nested past the bound are counted where the context line is cut") {
    capture cap;
    abc l;
    nested_frames(40, l);
    lock_unlock_2(l.b, l.a);
    REQUIRE(cap.kinds() == "circular_dependency");
    const std::string line = cap.at(0).contexts.at(0);
    // Outermost first: ctx 40 down to ctx 9 are the 32 kept; the 8 innermost are counted.
    CHECK(line.starts_with("running a signal callback of fence 'ring' ctx 40 seqno 1, "));
    CHECK(line.ends_with("running a signal callback of fence 'ring' ctx 9 seqno 1, ... (8 more)"));
}

TEST_CASE("a recursion report puts each context line under the lock it belongs to") {
    capture cap;
    static fencedep::lock_class_key key;
    lock_map outer{"fence lock", key};
    lock_map inner{"fence lock", key};
    const context_frame enabling{fence_op::enable_signaling, "fence_chain", "chain", "unbound", 12, 7};
    const context_frame adding{fence_op::add_callback, "fence_array", "array", "unbound", 9, 1};
    context_scope f0(enabling);
    outer.acquire();
    {
        context_scope f1(adding);
        inner.acquire();
        inner.release();
    }
    outer.release();
    REQUIRE(cap.kinds() == "recursive_locking");
    const auto r = cap.at(0);
    REQUIRE(r.contexts.size() == 2);
    CHECK(r.contexts[0] == "enabling signaling on fence_chain 'chain' ctx 12 seqno 7");
    CHECK(r.contexts[1] ==
          "enabling signaling on fence_chain 'chain' ctx 12 seqno 7, adding a callback to fence_array 'array' ctx 9 "
          "seqno 1");
    const auto held = r.text.find("but task is already holding lock:");
    REQUIRE(held != std::string::npos);
    CHECK(contains(r.text.substr(held), "taken while enabling signaling on fence_chain 'chain' ctx 12 seqno 7\n"));
    CHECK_FALSE(contains(r.text.substr(held), "taken while enabling signaling on fence_chain 'chain' ctx 12 seqno 7, "
                                              "adding"));
}

namespace {
lock_map* signal_lock = nullptr;
std::atomic<int> handled{0};

void take_lock_in_handler(int) {
    signal_lock->acquire();
    signal_lock->release();
    handled.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

TEST_CASE("a signal handler that takes a fencedep lock does not hang inside reset() or enable()") {
    capture cap;
    lock_map in_handler{"taken in a signal handler"};
    signal_lock = &in_handler;
    struct sigaction action {};
    action.sa_handler = take_lock_in_handler;
    sigemptyset(&action.sa_mask);
    struct sigaction previous {};
    REQUIRE(sigaction(SIGUSR1, &action, &previous) == 0);
    const pthread_t target = pthread_self();
    std::atomic<bool> done{false};
    std::thread sender([&] {
        while (!done.load())
            pthread_kill(target, SIGUSR1);
    });
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (std::chrono::steady_clock::now() < until) {
        fencedep::reset();
        fencedep::enable(true);
    }
    done = true;
    sender.join();
    sigaction(SIGUSR1, &previous, nullptr);
    CHECK(handled.load() > 0);
    CHECK(cap.kinds() == "");
}

}  // TEST_SUITE

TEST_SUITE("reports that repeat") {

TEST_CASE("a held lock freed in a loop is one report") {
    capture cap;
    static fencedep::lock_class_key key;
    for (int i = 0; i < 100; ++i) {
        auto lock = std::make_unique<lock_map>("freed while held", key);
        lock->acquire();
    }
    CHECK(cap.kinds() == "held_lock_freed");
}

TEST_CASE("threads that each exit holding the same lock are one report") {
    capture cap;
    static fencedep::lock_class_key key;
    for (int i = 0; i < 20; ++i) {
        std::thread([] {
            static lock_map held{"left held", key};
            held.acquire();
        }).join();
    }
    CHECK(cap.kinds() == "lock_held_at_thread_exit");
}

TEST_CASE("an invalid subclass asked of fresh instances of one class is one report") {
    capture cap;
    static fencedep::lock_class_key key;
    std::vector<std::unique_ptr<lock_map>> fresh;  // all alive: 100 different instances
    for (int i = 0; i < 100; ++i) {
        fresh.push_back(std::make_unique<lock_map>("fresh", key));
        fresh.back()->acquire(9);
        fresh.back()->release();
    }
    CHECK(cap.kinds() == "invalid_subclass");
}

}  // TEST_SUITE
