// SPDX-License-Identifier: MIT
// fencedep::timed_mutex, recursive_timed_mutex and shared_timed_mutex: a timed attempt that may
// wait is validated as lock() (or, for a reader, lock_shared()) is, before waiting, and taken back
// without a trace when it times out; one that cannot wait is a trylock.
#include <chrono>
#include <functional>
#include <latch>
#include <string>
#include <thread>

#include "../engine/capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::contains;
using engine_test::lock_unlock_2;
using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;

namespace {

struct timed_node {
    fencedep::recursive_timed_mutex lock{"node->lock"};
};

// The two sides a timed attempt can take, for the cases that hold for both: a writer of a
// timed_mutex and a reader of a shared_timed_mutex. `held` is how a report shows lock A held.
struct writer {
    using lock_type = fencedep::timed_mutex;
    static constexpr const char* held = "(A){write}";
    static bool try_for(lock_type& lock, auto timeout) { return lock.try_lock_for(timeout); }
    static bool try_until(lock_type& lock, auto deadline) { return lock.try_lock_until(deadline); }
    static void unlock(lock_type& lock) { lock.unlock(); }
};
struct reader {
    using lock_type = fencedep::shared_timed_mutex;
    static constexpr const char* held = "(A){read}";
    static bool try_for(lock_type& lock, auto timeout) { return lock.try_lock_shared_for(timeout); }
    static bool try_until(lock_type& lock, auto deadline) { return lock.try_lock_shared_until(deadline); }
    static void unlock(lock_type& lock) { lock.unlock_shared(); }
};

// Runs `attempt` on `a` while another thread holds `a` (as a writer).
template <class Lock, class Attempt>
void while_held_elsewhere(Lock& a, Attempt attempt) {
    std::latch held(1);
    std::latch done(1);
    std::thread holder([&] {
        a.lock();
        held.count_down();
        done.wait();
        a.unlock();
    });
    held.wait();
    attempt();
    done.count_down();
    holder.join();
}

// Holds X, makes `attempt` (given A), then runs a sequence whose verdicts depend on what this
// thread holds, and returns the kinds of all the reports.
template <class Lock>
std::string verdicts_after(const std::function<void(Lock&)>& attempt) {
    capture cap;
    Lock a{"A"};
    fencedep::mutex x{"X"};
    fencedep::mutex d{"D"};
    fencedep::mutex e{"E"};
    x.lock();
    attempt(a);
    CHECK(x.map().held_by_this_thread());
    CHECK_FALSE(a.map().held_by_this_thread());
    // An A left held would be ordered before D, and then be taken again under D.
    d.lock();
    d.unlock();
    x.unlock();
    lock_unlock_2(d, a);
    // One real cycle, so that the sequence has a verdict to compare.
    lock_unlock_2(e, d);
    lock_unlock_2(d, e);
    CHECK_FALSE(a.map().held_by_this_thread());
    return cap.kinds();
}

}  // namespace

TEST_SUITE("sync") {

TEST_CASE_TEMPLATE("timed attempts with time to wait are validated as the blocking call", Side, writer, reader) {
    capture cap;
    typename Side::lock_type a{"A"};
    fencedep::timed_mutex b{"B"};
    b.lock();
    SUBCASE("for") { REQUIRE(Side::try_for(a, 1s)); }
    SUBCASE("until, steady clock") { REQUIRE(Side::try_until(a, steady_clock::now() + 1s)); }
    SUBCASE("until, system clock") { REQUIRE(Side::try_until(a, system_clock::now() + 1s)); }
    b.unlock();
    // B -> A was recorded (a trylock would have recorded nothing into A), so B taken under the
    // A still held closes a cycle; the report shows how A is held.
    b.lock();
    b.unlock();
    Side::unlock(a);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "A, B");
    CHECK(contains(cap.at(0).text, Side::held));
}

TEST_CASE_TEMPLATE("timed attempts with no time to wait are trylocks", Side, writer, reader) {
    capture cap;
    typename Side::lock_type a{"A"};
    fencedep::timed_mutex b{"B"};
    lock_unlock_2(a, b);
    b.lock();
    SUBCASE("zero timeout") { REQUIRE(Side::try_for(a, 0s)); }
    SUBCASE("negative timeout") { REQUIRE(Side::try_for(a, -5ms)); }
    SUBCASE("deadline passed") { REQUIRE(Side::try_until(a, steady_clock::now() - 1s)); }
    CHECK(a.map().held_by_this_thread());
    Side::unlock(a);
    b.unlock();
    CHECK(cap.kinds() == "");
}

TEST_CASE("an ABBA through try_lock_for is reported before the thread waits") {
    capture cap;
    fencedep::timed_mutex a{"A"};
    fencedep::timed_mutex b{"B"};
    lock_unlock_2(a, b);
    b.lock();
    std::latch held(1);
    bool reported_while_held = false;
    std::thread holder([&] {
        a.lock();
        held.count_down();
        // A is given up once the report is in, or after 10 s if it never comes.
        reported_while_held = cap.wait_for(1, 10s);
        a.unlock();
    });
    held.wait();
    const bool taken = a.try_lock_for(60s);
    holder.join();
    CHECK(reported_while_held);
    REQUIRE(taken);
    a.unlock();
    b.unlock();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "B, A");
}

TEST_CASE_TEMPLATE("a timed-out attempt leaves the held locks as if it had not been made", Side, writer, reader) {
    using lock_type = typename Side::lock_type;
    const std::string without = verdicts_after<lock_type>([](lock_type&) {});
    CHECK(without == "circular_dependency");
    SUBCASE("for") {
        CHECK(verdicts_after<lock_type>([](lock_type& a) {
                  while_held_elsewhere(a, [&] { CHECK_FALSE(Side::try_for(a, 20ms)); });
              }) == without);
    }
    SUBCASE("until") {
        CHECK(verdicts_after<lock_type>([](lock_type& a) {
                  while_held_elsewhere(a, [&] { CHECK_FALSE(Side::try_until(a, steady_clock::now() + 20ms)); });
              }) == without);
    }
}

TEST_CASE("recursive_timed_mutex") {
    capture cap;

    SUBCASE("the owner's timed attempts succeed at once and count a level each") {
        fencedep::recursive_timed_mutex r{"R"};
        r.lock();
        CHECK(r.try_lock_for(10s));
        CHECK(r.try_lock_until(steady_clock::now() + 10s));
        CHECK(r.try_lock_for(0s));
        CHECK(r.try_lock());
        bool other_took = true;
        bool other_holds = true;
        std::thread([&] {
            other_took = r.try_lock_for(20ms);
            other_holds = r.map().held_by_this_thread();
        }).join();
        CHECK_FALSE(other_took);
        CHECK_FALSE(other_holds);
        for (int level = 0; level < 4; ++level) {
            r.unlock();
            CHECK(r.map().held_by_this_thread());
        }
        r.unlock();
        CHECK_FALSE(r.map().held_by_this_thread());
        CHECK(cap.kinds() == "");
    }
    SUBCASE("a second instance of the class") {
        timed_node first;
        timed_node second;
        first.lock.lock();
        SUBCASE("taken with time to wait: recursive locking") {
            REQUIRE(second.lock.try_lock_for(1s));
            REQUIRE(cap.kinds() == "recursive_locking");
            CHECK(classes_of(cap.at(0)) == "node->lock, node->lock");
        }
        SUBCASE("taken with no time to wait: a trylock, silent") {
            REQUIRE(second.lock.try_lock_for(0s));
            CHECK(cap.kinds() == "");
        }
        second.lock.unlock();
        first.lock.unlock();
    }
}

}  // TEST_SUITE
