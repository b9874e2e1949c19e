// SPDX-License-Identifier: MIT
// Every lock report kind the engine makes, each with a case that must and one that must not report.
#include <pthread.h>

#include <array>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::contains;
using engine_test::lock_unlock_2;
using fencedep::report_kind;

namespace {

struct device {
    fencedep::spinlock lock{"dev->lock"};
};

void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

// The one report so far, which must be of `kind` and titled as the kernel titles that kind.
fencedep::report only_warning(const capture& cap, const char* kind) {
    REQUIRE(cap.kinds() == kind);
    const auto r = cap.at(0);
    CHECK(r.title == std::string("WARNING: ") + fencedep::report_title(r.kind));
    return r;
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("circular_dependency") {
    capture cap;
    fencedep::mutex a{"A"};
    fencedep::mutex b{"B"};
    lock_unlock_2(a, b);

    SUBCASE("B then A after A then B") {
        lock_unlock_2(b, a);
        const auto r = only_warning(cap, "circular_dependency");
        CHECK(r.kind == report_kind::circular_dependency);
        CHECK(classes_of(r) == "B, A");
        CHECK(r.stacks.size() == r.classes.size());
        CHECK(r.is_splat);
        CHECK(fencedep::splat_count() == 1);
    }
    SUBCASE("A then B again") {
        lock_unlock_2(a, b);
        CHECK(cap.kinds() == "");
        CHECK(fencedep::splat_count() == 0);
    }
}

TEST_CASE("recursive_locking") {
    capture cap;
    device first;
    device second;

    SUBCASE("two instances of a member lock's class nest") {
        lock_unlock_2(first.lock, second.lock);
        const auto r = only_warning(cap, "recursive_locking");
        REQUIRE(!r.classes.empty());
        for (const auto& name : r.classes)
            CHECK(name == "dev->lock");
        CHECK_FALSE(r.stacks.empty());
    }
    SUBCASE("lock_nested(1) teaches a parent-then-child order") {
        first.lock.lock();
        second.lock.lock_nested(1);
        second.lock.unlock();
        first.lock.unlock();
        CHECK(cap.kinds() == "");
    }
    SUBCASE("one after the other") {
        first.lock.lock();
        first.lock.unlock();
        second.lock.lock();
        second.lock.unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("the same subclass twice is recursive locking of name/N") {
    capture cap;
    device first;
    device second;
    first.lock.lock_nested(1);
    second.lock.lock_nested(1);
    second.lock.unlock();
    first.lock.unlock();
    REQUIRE(cap.kinds() == "recursive_locking");
    REQUIRE(!cap.at(0).classes.empty());
    CHECK(cap.at(0).classes.front() == "dev->lock/1");
}

TEST_CASE("locking done by the report handler is not validated") {
    capture cap;
    fencedep::mutex a{"A"};
    fencedep::mutex b{"B"};
    fencedep::mutex inside{"inside handler"};
    std::size_t handled = 0;
    auto previous = fencedep::set_report_handler([&](const fencedep::report&) {
        ++handled;
        // Both orders of A and `inside`: a cycle, if the handler's events counted.
        lock_unlock_2(a, inside);
        lock_unlock_2(inside, a);
    });
    lock_unlock_2(a, b);
    lock_unlock_2(b, a);
    CHECK(handled == 1);
    // Had the handler's A -> inside been recorded, this would close a cycle.
    lock_unlock_2(inside, a);
    CHECK(handled == 1);
    CHECK(fencedep::splat_count() == 1);
    fencedep::set_report_handler(previous);
}

TEST_CASE("subclasses are classes of their own and print as name/N") {
    capture cap;
    device parent;
    device child;
    parent.lock.lock();
    child.lock.lock_nested(1);
    child.lock.unlock();
    parent.lock.unlock();
    REQUIRE(cap.kinds() == "");

    child.lock.lock_nested(1);
    parent.lock.lock();
    parent.lock.unlock();
    child.lock.unlock();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "dev->lock/1, dev->lock");
}

TEST_CASE("two keys with one name print as name and name#2; subclasses keep their key's version") {
    capture cap;
    // Names may contain '#' and '/' themselves: the suffixes are added, never parsed back.
    static fencedep::lock_class_key first_key;
    static fencedep::lock_class_key second_key;
    fencedep::spinlock first{"q/lock#0", first_key};
    fencedep::spinlock second{"q/lock#0", second_key};
    first.lock();
    second.lock_nested(1);
    second.unlock();
    first.unlock();
    second.lock();
    first.lock();
    first.unlock();
    second.unlock();
    second.lock_nested(1);
    first.lock();
    first.unlock();
    second.unlock();
    REQUIRE(cap.kinds() == "circular_dependency");
    CHECK(classes_of(cap.at(0)) == "q/lock#0#2/1, q/lock#0");
}

TEST_CASE("bad_unlock_balance") {
    capture cap;
    fencedep::lock_map map{"M"};

    SUBCASE("release of a lock never taken") {
        map.release();
        const auto r = only_warning(cap, "bad_unlock_balance");
        CHECK(classes_of(r) == "M");
    }
    SUBCASE("double unlock of a spinlock") {
        fencedep::spinlock s{"S"};
        s.lock();
        s.unlock();
        s.unlock();
        REQUIRE(cap.kinds() == "bad_unlock_balance");
        CHECK(classes_of(cap.at(0)) == "S");
    }
    SUBCASE("release of a lock another thread holds") {
        std::thread([&] {
            map.acquire();
            map.release();
        }).join();
        map.acquire();
        std::thread([&] { map.release(); }).join();
        REQUIRE(cap.kinds() == "bad_unlock_balance");
        map.release();
        CHECK(cap.kinds() == "bad_unlock_balance");
    }
    SUBCASE("balanced") {
        map.acquire();
        CHECK(map.held_by_this_thread());
        map.release();
        CHECK_FALSE(map.held_by_this_thread());
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("held_lock_freed") {
    capture cap;

    SUBCASE("a heap spinlock deleted while held") {
        auto* lock = new fencedep::spinlock("heap->lock");
        lock->lock();
        delete lock;
        const auto r = only_warning(cap, "held_lock_freed");
        CHECK(classes_of(r) == "heap->lock");
    }
    SUBCASE("a lock_map destroyed while held, below another held lock") {
        fencedep::spinlock outer{"outer"};
        outer.lock();
        {
            fencedep::lock_map map{"scoped map"};
            map.acquire();
        }
        REQUIRE(cap.kinds() == "held_lock_freed");
        CHECK(classes_of(cap.at(0)) == "scoped map");
        CHECK(outer.map().held_by_this_thread());
        outer.unlock();
        CHECK(cap.kinds() == "held_lock_freed");
    }
    SUBCASE("a lock deleted after release") {
        auto* lock = new fencedep::spinlock("heap->lock");
        lock->lock();
        lock->unlock();
        delete lock;
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("lock_held_at_thread_exit") {
    capture cap;

    SUBCASE("a thread returns holding a spinlock") {
        fencedep::spinlock lock{"leaked"};
        std::thread([&] {
            name_this_thread("leaker");
            lock.lock();
        }).join();
        REQUIRE(cap.kinds() == "lock_held_at_thread_exit");
        const auto r = cap.at(0);
        CHECK(r.title == "WARNING: " + r.thread + " still has locks held!");
        CHECK(classes_of(r) == "leaked");
        CHECK(r.thread.rfind("leaker/", 0) == 0);
        CHECK_FALSE(lock.map().held_by_this_thread());
        // The dead thread still owns the raw lock; release it behind the validator's back.
        fencedep::enable(false);
        lock.unlock();
        fencedep::enable(true);
    }
    SUBCASE("a thread returns holding two pseudo-locks") {
        fencedep::lock_map outer{"outer map"};
        fencedep::lock_map inner{"inner map"};
        std::thread([&] {
            outer.acquire();
            inner.acquire();
        }).join();
        REQUIRE(cap.kinds() == "lock_held_at_thread_exit");
        const auto r = cap.at(0);
        CHECK(contains(r.text, "outer map"));
        CHECK(contains(r.text, "inner map"));
    }
    SUBCASE("a thread that released its locks") {
        fencedep::spinlock lock{"released"};
        std::thread([&] {
            lock.lock();
            lock.unlock();
        }).join();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("lock_depth_exceeded") {
    capture cap;
    constexpr unsigned default_depth = 48;
    static std::array<fencedep::lock_class_key, default_depth + 1> keys;
    std::vector<std::string> names;
    std::vector<std::unique_ptr<fencedep::spinlock>> locks;
    for (unsigned i = 0; i <= default_depth; ++i)
        names.push_back("depth " + std::to_string(i));
    for (unsigned i = 0; i <= default_depth; ++i)
        locks.push_back(std::make_unique<fencedep::spinlock>(names[i].c_str(), keys[i]));

    SUBCASE("49 locks held at once") {
        for (auto& lock : locks)
            lock->lock();
        for (auto it = locks.rbegin(); it != locks.rend(); ++it)
            (*it)->unlock();
        REQUIRE(cap.kinds() == "lock_depth_exceeded");
        const auto r = cap.at(0);
        CHECK(r.title == "BUG: max_lock_depth too low!");
        CHECK(contains(r.text, "48"));
    }
    SUBCASE("48 locks held at once") {
        for (unsigned i = 0; i < default_depth; ++i)
            locks[i]->lock();
        for (unsigned i = default_depth; i-- > 0;)
            locks[i]->unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("invalid_subclass") {
    capture cap;
    fencedep::spinlock lock{"L"};

    SUBCASE("lock_nested(8)") {
        lock.lock_nested(8);
        CHECK(lock.map().held_by_this_thread());
        lock.unlock();
        REQUIRE(cap.kinds() == "invalid_subclass");
        CHECK(cap.at(0).title == "BUG: looking up invalid subclass: 8");
    }
    SUBCASE("lock_nested(8) is recorded as subclass 0") {
        fencedep::spinlock other{"M"};
        lock.lock_nested(8);
        other.lock();
        other.unlock();
        lock.unlock();
        lock_unlock_2(other, lock);
        REQUIRE(cap.kinds() == "invalid_subclass, circular_dependency");
        CHECK(classes_of(cap.at(1)) == "M, L");
    }
    SUBCASE("lock_nested(7), the highest subclass") {
        lock.lock_nested(fencedep::lock_map::max_subclass);
        lock.unlock();
        CHECK(cap.kinds() == "");
    }
}

TEST_CASE("an explicit lock_class_key makes one class of locks built on different lines") {
    static fencedep::lock_class_key ring_key;
    capture cap;
    fencedep::spinlock first{"ring->lock", ring_key};
    fencedep::spinlock second{"ring->lock", ring_key};
    fencedep::spinlock unkeyed_first{"ring->lock"};
    fencedep::spinlock unkeyed_second{"ring->lock"};

    SUBCASE("same key: recursive") {
        lock_unlock_2(first, second);
        REQUIRE(cap.kinds() == "recursive_locking");
        REQUIRE(!cap.at(0).classes.empty());
        CHECK(cap.at(0).classes.front() == "ring->lock");
    }
    SUBCASE("same key across an ABBA: the key's name is the class's") {
        fencedep::spinlock other{"other"};
        lock_unlock_2(first, other);
        lock_unlock_2(other, second);
        REQUIRE(cap.kinds() == "circular_dependency");
        CHECK(classes_of(cap.at(0)) == "other, ring->lock");
    }
    SUBCASE("different lines without a key: two classes") {
        lock_unlock_2(unkeyed_first, unkeyed_second);
        CHECK(cap.kinds() == "");
    }
}

}  // TEST_SUITE
