// SPDX-License-Identifier: MIT
// Validation under real threads: an ABBA reported before it blocks, and a concurrent chain cache.
#include <atomic>
#include <barrier>
#include <chrono>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::lock_unlock_2;
using engine_test::lock_unlock_3;
using namespace std::chrono_literals;

namespace {

// Three classes (one construction line each); every instance of this struct shares them.
struct lock_set {
    fencedep::mutex a{"set A"};
    fencedep::mutex b{"set B"};
    fencedep::mutex c{"set C"};
};

void take_in_order(lock_set& l) { lock_unlock_3(l.a, l.b, l.c); }

// Only two of the three are reversed: B->A closes one cycle. Reversing all three would close
// two distinct ones (with B->C and A->B), each reported once.
void take_reversed(lock_set& l) { lock_unlock_2(l.b, l.a); }

constexpr int hammer_threads = 4;
constexpr int hammer_iterations = 100000;

// Classes that no thread has seen yet, so that every thread takes the engine's slow path at once.
constexpr int fresh_per_thread = 32;
fencedep::lock_class_key fresh_keys[hammer_threads][fresh_per_thread];

}  // namespace

TEST_SUITE("engine") {

// T2 teaches B->A and keeps B; T1 takes A, then B. T1's B.lock() must report before it blocks
// on B, because T2 lets go of B only once it has seen the report. An engine that validated
// after blocking would leave T1 stuck until T2's wait expires; the case then fails instead.
TEST_CASE("an ABBA between two threads is reported before the second lock blocks") {
    capture cap;
    fencedep::mutex a{"thread A"};
    fencedep::mutex b{"thread B"};
    std::latch b_held_after_a{1};
    std::atomic<bool> t1_got_b{false};
    bool reported_in_time = false;

    std::thread t2([&] {
        b.lock();
        a.lock();
        a.unlock();
        b_held_after_a.count_down();
        reported_in_time = cap.wait_for(1, 60s);
        b.unlock();
    });
    std::thread t1([&] {
        b_held_after_a.wait();
        a.lock();
        b.lock();
        t1_got_b = true;
        b.unlock();
        a.unlock();
    });
    t1.join();
    t2.join();

    CHECK(reported_in_time);
    CHECK(t1_got_b);
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    CHECK(classes_of(r) == "thread A, thread B");
    CHECK(r.stacks.size() == 2);
}

TEST_CASE("four threads in one order make no report") {
    capture cap;
    lock_set shared;
    std::barrier start{hammer_threads};
    std::vector<std::thread> threads;
    for (int t = 0; t < hammer_threads; ++t)
        threads.emplace_back([&] {
            lock_set own;
            start.arrive_and_wait();
            for (int i = 0; i < hammer_iterations; ++i) {
                take_in_order(shared);
                take_in_order(own);
            }
        });
    for (auto& thread : threads)
        thread.join();
    CHECK(cap.kinds() == "");
}

// Each thread has its own instances, so the reversed thread cannot really deadlock the others;
// the classes are shared, so the validator sees the inversion all the same.
TEST_CASE("four threads, one in the reverse order: exactly one circular report") {
    capture cap;
    std::barrier start{hammer_threads};
    std::vector<std::thread> threads;
    for (int t = 0; t < hammer_threads; ++t)
        threads.emplace_back([&, reversed = t == hammer_threads - 1] {
            lock_set own;
            start.arrive_and_wait();
            for (int i = 0; i < hammer_iterations; ++i) {
                if (reversed)
                    take_reversed(own);
                else
                    take_in_order(own);
            }
        });
    for (auto& thread : threads)
        thread.join();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(fencedep::splat_count() == 1);
    const auto cycle = classes_of(cap.at(0));
    CHECK((cycle == "set A, set B" || cycle == "set B, set A"));
}

TEST_CASE("four threads recording new edges at once") {
    capture cap;
    static fencedep::lock_class_key root_key;
    fencedep::spinlock root{"root", root_key};
    std::vector<std::unique_ptr<fencedep::spinlock>> fresh[hammer_threads];
    for (int t = 0; t < hammer_threads; ++t)
        for (int i = 0; i < fresh_per_thread; ++i)
            fresh[t].push_back(std::make_unique<fencedep::spinlock>("fresh", fresh_keys[t][i]));

    std::barrier start{hammer_threads};
    std::vector<std::thread> threads;
    for (int t = 0; t < hammer_threads; ++t)
        threads.emplace_back([&, t] {
            start.arrive_and_wait();
            for (int i = 0; i + 1 < fresh_per_thread; ++i) {
                lock_unlock_2(*fresh[t][i], *fresh[t][i + 1]);
                lock_unlock_2(root, *fresh[t][i]);
            }
        });
    for (auto& thread : threads)
        thread.join();
    REQUIRE(cap.kinds() == "");

    // Every edge made it into the graph: closing root -> fresh[t][0] -> ... -> fresh[t][last]
    // from any thread's far end is a cycle.
    for (int t = 0; t < hammer_threads; ++t)
        lock_unlock_2(*fresh[t][fresh_per_thread - 1], root);
    CHECK(cap.kinds() == "circular_dependency, circular_dependency, circular_dependency, "
                         "circular_dependency");
}

}  // TEST_SUITE
