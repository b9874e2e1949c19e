// SPDX-License-Identifier: MIT
// C++ exceptions unwind through code linked with fencedep and release locks.
#include <dlfcn.h>

#include <stdexcept>
#include <string>
#include <thread>

#include "capture.h"
#include "throw_helper.h"

using engine_test::capture;

TEST_SUITE("engine") {

TEST_CASE("the object that provides _Unwind_RaiseException") {
    // A program may link another unwinder that exports the _Unwind_* API too (the nongnu
    // libunwind, LLVM's), which then serves fencedep's stack captures as well; record which
    // object wins, so that a change shows in the log.
    void* raise = dlsym(RTLD_DEFAULT, "_Unwind_RaiseException");
    REQUIRE(raise != nullptr);
    Dl_info info{};
    REQUIRE(dladdr(raise, &info) != 0);
    REQUIRE(info.dli_fname != nullptr);
    MESSAGE("_Unwind_RaiseException comes from ", std::string(info.dli_fname));
}

TEST_CASE("an exception thrown under a lock_guard in another translation unit") {
    capture cap;
    fencedep::mutex outer{"outer"};
    fencedep::mutex inner{"inner"};

    SUBCASE("one guard") {
        CHECK_THROWS_AS(engine_test::throw_under_guard(inner), std::runtime_error);
    }
    SUBCASE("two nested guards") {
        CHECK_THROWS_WITH_AS(engine_test::throw_under_two_guards(outer, inner),
                             "thrown under a fencedep::mutex", std::runtime_error);
        CHECK_FALSE(outer.map().held_by_this_thread());
        outer.lock();
        CHECK(outer.map().held_by_this_thread());
        outer.unlock();
    }
    SUBCASE("on another thread") {
        bool caught = false;
        std::thread([&] {
            try {
                engine_test::throw_under_two_guards(outer, inner);
            } catch (const std::runtime_error&) {
                caught = true;
            }
        }).join();
        CHECK(caught);
    }

    CHECK_FALSE(inner.map().held_by_this_thread());
    inner.lock();
    CHECK(inner.map().held_by_this_thread());
    inner.unlock();
    CHECK_FALSE(inner.map().held_by_this_thread());
    CHECK(cap.kinds() == "");
}

TEST_CASE("validation is intact after an exception unwound held locks") {
    capture cap;
    fencedep::mutex outer{"outer"};
    fencedep::mutex inner{"inner"};
    CHECK_THROWS(engine_test::throw_under_two_guards(outer, inner));
    REQUIRE(cap.kinds() == "");
    engine_test::lock_unlock_2(inner, outer);
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(engine_test::classes_of(cap.at(0)) == "inner, outer");
}

}  // TEST_SUITE
