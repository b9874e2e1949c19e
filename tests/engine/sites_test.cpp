// SPDX-License-Identifier: MIT
// The "at:" of a held lock names the user's function, even when the lock was taken on the fast
// path (no stack captured) inside a std::lock_guard or inside a fence operation. Built at -O0,
// where std::lock_guard's constructor is a function of its own.
#include <mutex>

#include "../fence/fence_test.h"
#include "capture.h"

using engine_test::capture;
using engine_test::contains;

namespace {

// The line of the held lock `name` in the held-locks list ("#0: 0x... (name){....}, at: ...").
std::string held_line(const fencedep::report& r, std::string_view name) {
    const auto list = r.text.find("held by");
    REQUIRE(list != std::string::npos);
    const auto entry = r.text.find(std::string("(") + std::string(name) + "){....}", list);
    REQUIRE(entry != std::string::npos);
    return r.text.substr(entry, r.text.find('\n', entry) - entry);
}

[[gnu::noinline]] void guard_only(fencedep::mutex& a) {
    const std::lock_guard guard(a);
}

[[gnu::noinline]] void user_holds_a_and_takes_c(fencedep::mutex& a, fencedep::mutex& c) {
    const std::lock_guard guard(a);
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

TEST_CASE("a lock taken through std::lock_guard on the fast path is shown at the user's function") {
    capture cap;
    fencedep::mutex a{"A"};
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
