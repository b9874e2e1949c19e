// SPDX-License-Identifier: MIT
// The "at:" of a held lock names the user's function, even when the lock was taken on the fast
// path (no stack captured) inside a std::lock_guard or inside a fence operation. Built at -O0,
// where std::lock_guard's constructor is a function of its own.
#include <chrono>
#include <mutex>
#include <type_traits>

#include "../fence/fence_test.h"
#include "capture.h"

using engine_test::capture;
using engine_test::contains;

namespace {

// The line of the held lock `name` in the held-locks list ("#0: 0x... (name){write}, at: ...").
std::string held_line(const fencedep::report& r, std::string_view name) {
    const auto list = r.text.find("held by");
    REQUIRE(list != std::string::npos);
    const auto entry = r.text.find(std::string("(") + std::string(name) + "){write}", list);
    REQUIRE(entry != std::string::npos);
    return r.text.substr(entry, r.text.find('\n', entry) - entry);
}

template <class Lock>
[[gnu::noinline]] void guard_only(Lock& a) {
    const std::lock_guard guard(a);
}

// Takes `a` through the std wrapper that suits its type, then C under it.
template <class Lock>
[[gnu::noinline]] void user_holds_a_and_takes_c(Lock& a, fencedep::mutex& c) {
    if constexpr (std::is_same_v<Lock, fencedep::timed_mutex>) {
        const std::unique_lock guard(a, std::chrono::seconds(1));
        const std::lock_guard inner(c);
    } else {
        const std::lock_guard guard(a);
        const std::lock_guard inner(c);
    }
}

[[gnu::noinline]] void user_waits_then_takes_c(fencedep::condition_variable& cv,
                                               std::unique_lock<fencedep::mutex>& guard, fencedep::mutex& c) {
    cv.wait_for(guard, std::chrono::milliseconds(1));
    const std::lock_guard inner(c);
}

fencedep::spinlock* driver_lock = nullptr;

void takes_driver_lock(fencedep::fence&, fencedep::fence_callback&) noexcept {
    driver_lock->lock();
    driver_lock->unlock();
}

[[gnu::noinline]] void user_signals(fencedep::fence& f) {
    f.signal();
}

}  // namespace

TEST_SUITE("sites") {

TEST_CASE_TEMPLATE("a lock taken through a std wrapper on the fast path is shown at the user's function", Lock,
                   fencedep::mutex, fencedep::recursive_mutex, fencedep::timed_mutex) {
    capture cap;
    Lock a{"A"};
    fencedep::mutex c{"C"};
    guard_only(a);  // {A} is a known chain from now on: the next A takes the fast path
    {
        const std::lock_guard first(c);
        const std::lock_guard second(a);  // C -> A
    }
    user_holds_a_and_takes_c(a, c);
    REQUIRE(cap.kinds() == "circular_dependency");
    const std::string line = held_line(cap.at(0), "A");
    INFO(cap.at(0).text);
    CHECK(contains(line, "user_holds_a_and_takes_c"));
    CHECK_FALSE(contains(line, "lock_guard"));
    CHECK_FALSE(contains(line, "unique_lock"));
}

TEST_CASE("a condition variable's reacquisition of its mutex is shown at the user's call to wait") {
    capture cap;
    fencedep::mutex m{"M"};
    fencedep::mutex c{"C"};
    fencedep::condition_variable cv;
    {
        const std::lock_guard first(c);
        const std::lock_guard second(m);  // C -> M
    }
    // M is first taken here; the wait in user_waits_then_takes_c takes it again.
    std::unique_lock guard(m);
    user_waits_then_takes_c(cv, guard, c);
    REQUIRE(cap.kinds() == "circular_dependency");
    const std::string line = held_line(cap.at(0), "M");
    INFO(cap.at(0).text);
    CHECK(contains(line, "user_waits_then_takes_c"));
    CHECK_FALSE(contains(line, "condition_variable::"));  // a member, not the parameter type
}

TEST_CASE("a fence's lock held while its callbacks run is shown at the user's call to signal()") {
    capture cap;
    fencedep::spinlock driver{"driver"};
    driver_lock = &driver;
    fencedep::spinlock ring{"ring"};
    // Two fences on one lock: the first makes {ring} a known chain.
    auto warm = fence_test::mock_on(ring);
    warm->signal();
    auto f = fence_test::mock_on(ring);
    {
        // driver -> ring: a driver that signals under its own lock.
        const std::lock_guard held(driver);
        const std::lock_guard inner(ring);
    }
    fencedep::fence_callback cb;
    REQUIRE(f->add_callback(cb, takes_driver_lock) == 0);
    user_signals(*f);  // ring -> driver, in the callback
    REQUIRE(cap.kinds() == "circular_dependency");
    const std::string line = held_line(cap.at(0), "ring");
    INFO(cap.at(0).text);
    CHECK(contains(line, "user_signals"));
}

}  // TEST_SUITE
