// SPDX-License-Identifier: MIT
// Splat text in the kernel's layout, and stacks that name the test's own functions and lines.
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "capture.h"

using engine_test::capture;
using engine_test::classes_of;
using engine_test::contains;
using engine_test::describe;
using engine_test::has_frame;

namespace {

// Set by the helpers below to the line of the lock call that each stack must point at.
unsigned in_order_line = 0;
unsigned reversed_line = 0;
unsigned recursive_line = 0;

[[gnu::noinline]] void take_in_order(fencedep::mutex& outer, fencedep::mutex& inner) {
    outer.lock();
    inner.lock(); in_order_line = __LINE__;
    inner.unlock();
    outer.unlock();
}

[[gnu::noinline]] void take_reversed(fencedep::mutex& outer, fencedep::mutex& inner) {
    inner.lock();
    outer.lock(); reversed_line = __LINE__;
    outer.unlock();
    inner.unlock();
}

unsigned guard_line = 0;

// Built without optimization, as test binaries often are: std::lock_guard's constructor is then
// a call of its own, and the acquire site recorded by lock() lies inside it, not in this function.
#if defined(__clang__)
#define WITHOUT_OPTIMIZATION [[clang::optnone]]
#else
#define WITHOUT_OPTIMIZATION [[gnu::optimize("O0")]]
#endif
[[gnu::noinline]] WITHOUT_OPTIMIZATION void hold_with_guard(fencedep::mutex& held, fencedep::mutex& wanted) {
    std::lock_guard<fencedep::mutex> guard(held); guard_line = __LINE__;
    std::lock_guard<fencedep::mutex> inner(wanted);
}

struct node {
    fencedep::spinlock lock{"node->lock"};
};

[[gnu::noinline]] void take_two_nodes(node& first, node& second) {
    first.lock.lock();
    second.lock.lock(); recursive_line = __LINE__;
    second.lock.unlock();
    first.lock.unlock();
}

// Asserts that `needles` occur in `text` in this order.
void check_in_order(const std::string& text, const std::vector<std::string_view>& needles) {
    std::size_t from = 0;
    for (auto needle : needles) {
        const auto at = text.find(needle, from);
        CHECK_MESSAGE(at != std::string::npos, "missing, or out of order: \"", needle, "\"");
        if (at != std::string::npos)
            from = at + needle.size();
    }
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("circular dependency splat: kernel text, one stack per link, named frames") {
    capture cap;
    fencedep::mutex a{"splat A"};
    fencedep::mutex b{"splat B"};
    take_in_order(a, b);
    take_reversed(a, b);
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    REQUIRE(classes_of(r) == "splat B, splat A");
    REQUIRE(r.stacks.size() == 2);

    INFO("text:\n", r.text);
    check_in_order(r.text, {
        "WARNING: possible circular locking dependency detected",
        "is trying to acquire lock:",
        "splat A",
        "but task is already holding lock:",
        "splat B",
        "which lock already depends on the new lock.",
        "the existing dependency chain (in reverse order) is:",
        "-> #1",
        "splat B",
        "-> #0",
        "splat A",
        "other info that might help us debug this:",
        "Possible unsafe locking scenario",
        "CPU0",
        "CPU1",
        "lock(splat B);",
        "lock(splat A);",
        "*** DEADLOCK ***",
        "stack backtrace:",
    });
    CHECK_FALSE(contains(r.text, "Chain exists of:"));

    // #1: B was taken under A in take_in_order; #0: A is being taken under B now.
    CHECK_MESSAGE(has_frame(r.stacks[0], "take_in_order", in_order_line), describe(r.stacks[0]));
    CHECK_MESSAGE(has_frame(r.stacks[1], "take_reversed", reversed_line), describe(r.stacks[1]));
    // fencedep's own frames are trimmed: each stack starts in the test.
    REQUIRE_FALSE(r.stacks[0].empty());
    REQUIRE_FALSE(r.stacks[1].empty());
    CHECK(contains(r.stacks[0].front().function, "take_in_order"));
    CHECK(contains(r.stacks[1].front().function, "take_reversed"));
}

TEST_CASE("a cycle through a reader: the reader's lines show how it is held, the scenario rlock()s it") {
    capture cap;
    fencedep::shared_mutex table{"table_lock"};
    fencedep::rwlock stats{"stats_lock"};
    fencedep::mutex log{"log_lock"};
    engine_test::reading table_read(table);
    // The one report: a cycle of `classes`, whose text has `needles` in this order.
    const auto check_only_cycle = [&](const char* classes, const std::vector<std::string_view>& needles) {
        REQUIRE(cap.kinds() == "circular_dependency");
        const auto r = cap.at(0);
        CHECK(classes_of(r) == classes);
        INFO("text:\n", r.text);
        check_in_order(r.text, needles);
    };

    SUBCASE("held shared_mutex reader: {read}, and CPU0's first line is rlock") {
        engine_test::lock_unlock_2(log, table);
        engine_test::lock_unlock_2(table_read, log);
        check_only_cycle("table_lock, log_lock", {
            "is trying to acquire lock:", "(log_lock){write}",
            "but task is already holding lock:", "(table_lock){read}",
            // How each was taken when the dependency it stands for was recorded.
            "-> #1 (table_lock){write}:", "-> #0 (log_lock){write}:",
            "CPU0", "\n  rlock(table_lock);", "lock(log_lock);", "lock(table_lock);", "\n  lock(log_lock);",
            "*** DEADLOCK ***",
            "1 lock held by", "(table_lock){read}",
        });
    }
    SUBCASE("acquired shared_mutex reader: {read}, and CPU0's last line is rlock") {
        engine_test::lock_unlock_2(table, log);
        engine_test::lock_unlock_2(log, table_read);
        check_only_cycle("log_lock, table_lock", {
            "is trying to acquire lock:", "(table_lock){read}",
            "but task is already holding lock:", "(log_lock){write}",
            "-> #1 (log_lock){write}:", "-> #0 (table_lock){read}:",
            "CPU0", "\n  lock(log_lock);", "lock(table_lock);", "lock(log_lock);", "\n  rlock(table_lock);",
            "*** DEADLOCK ***",
        });
    }
    SUBCASE("held rwlock reader, against a writer: {recursive read}, rlock") {
        engine_test::lock_unlock_2(log, stats);
        engine_test::reading stats_read(stats);
        engine_test::lock_unlock_2(stats_read, log);
        check_only_cycle("stats_lock, log_lock", {"but task is already holding lock:", "(stats_lock){recursive read}",
                                                  "\n  rlock(stats_lock);", "\n  lock(log_lock);"});
    }
}

TEST_CASE("a held lock's \"at:\" names the user's function, not std::lock_guard") {
    capture cap;
    fencedep::mutex held{"guarded H"};
    fencedep::mutex wanted{"guarded W"};
    engine_test::lock_unlock_2(wanted, held);
    hold_with_guard(held, wanted);
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    INFO("text:\n", r.text);
    const std::string held_line = "(guarded H){write}, at: (anonymous namespace)::hold_with_guard(";
    CHECK(contains(r.text, held_line));
    CHECK(contains(r.text, "splat_test.cpp:" + std::to_string(guard_line)));
    CHECK_FALSE(contains(r.text, "at: std::lock_guard"));
}

TEST_CASE("a chain of three prints \"Chain exists of:\"") {
    capture cap;
    fencedep::spinlock a{"chain A"};
    fencedep::spinlock b{"chain B"};
    fencedep::spinlock c{"chain C"};
    engine_test::lock_unlock_2(a, b);
    engine_test::lock_unlock_2(b, c);
    engine_test::lock_unlock_2(c, a);
    REQUIRE(cap.kinds() == "circular_dependency");
    const auto r = cap.at(0);
    CHECK(classes_of(r) == "chain C, chain B, chain A");
    INFO("text:\n", r.text);
    check_in_order(r.text, {"-> #2", "chain C", "-> #1", "chain B", "-> #0", "chain A",
                            "Chain exists of:", "chain A --> chain B --> chain C"});
}

TEST_CASE("recursive locking splat") {
    capture cap;
    node first;
    node second;
    take_two_nodes(first, second);
    REQUIRE(cap.kinds() == "recursive_locking");
    const auto r = cap.at(0);
    INFO("text:\n", r.text);
    check_in_order(r.text, {
        "WARNING: possible recursive locking detected",
        "is trying to acquire lock:",
        "node->lock",
        "but task is already holding lock:",
        "node->lock",
        "Possible unsafe locking scenario",
        "lock(node->lock);",
        "lock(node->lock);",
        "*** DEADLOCK ***",
        "May be due to missing lock nesting notation",
        "stack backtrace:",
    });
    REQUIRE_FALSE(r.stacks.empty());
    CHECK_MESSAGE(has_frame(r.stacks[0], "take_two_nodes", recursive_line), describe(r.stacks[0]));
}

TEST_CASE("bad unlock balance and held lock freed splats") {
    capture cap;

    SUBCASE("bad unlock balance") {
        fencedep::lock_map map{"unbalanced"};
        map.release();
        REQUIRE(cap.kinds() == "bad_unlock_balance");
        const auto r = cap.at(0);
        INFO("text:\n", r.text);
        check_in_order(r.text, {"WARNING: bad unlock balance detected!",
                                "is trying to release lock (unbalanced) at:",
                                "but there are no more locks to release!", "stack backtrace:"});
    }
    SUBCASE("held lock freed") {
        auto* map = new fencedep::lock_map("freed map");
        map->acquire();
        delete map;
        REQUIRE(cap.kinds() == "held_lock_freed");
        const auto r = cap.at(0);
        INFO("text:\n", r.text);
        check_in_order(r.text, {"WARNING: held lock freed!", "with a lock still held there!",
                                "freed map", "stack backtrace:"});
    }
}

}  // TEST_SUITE
