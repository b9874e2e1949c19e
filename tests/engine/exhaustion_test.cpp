// SPDX-License-Identifier: MIT
// Full tables: one table_exhausted report naming the option, then validation off, locking fine.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture.h"
#include "config/options.h"
#include "engine/engine.h"

using engine_test::capture;
using engine_test::contains;

namespace {

constexpr unsigned lock_count = 64;
std::array<fencedep::lock_class_key, lock_count> keys;

using lock_list = std::vector<std::unique_ptr<fencedep::spinlock>>;
using table_size = std::uint32_t fencedep::detail::options::*;

// Locks of distinct classes (explicit keys, so that one loop can make many).
lock_list make_locks() {
    lock_list locks;
    for (auto& key : keys)
        locks.push_back(std::make_unique<fencedep::spinlock>("exhaust", key));
    return locks;
}

// Takes each lock alone: a new class and a new chain for each.
void take_each(lock_list& locks) {
    for (auto& lock : locks) {
        lock->lock();
        lock->unlock();
    }
}

// Takes each lock with the next one under it: a new edge for each pair.
void take_neighbours(lock_list& locks) {
    for (std::size_t i = 0; i + 1 < locks.size(); ++i)
        engine_test::lock_unlock_2(*locks[i], *locks[i + 1]);
}

// Runs the case with one tiny table, and gives the next case the options it started with.
class tiny_tables {
public:
    tiny_tables(table_size table, std::uint32_t limit)
        : saved_(fencedep::detail::current_options()) {
        auto opts = saved_;
        opts.enabled = true;
        opts.*table = limit;
        fencedep::detail::reconfigure(opts);
    }
    ~tiny_tables() { fencedep::detail::reconfigure(saved_); }
    tiny_tables(const tiny_tables&) = delete;
    tiny_tables& operator=(const tiny_tables&) = delete;

private:
    fencedep::detail::options saved_;
};

// Cuts the table `option` (`table` in the options) down to `limit` entries and fills it by
// taking the locks as `take` does. Then: exactly one report, which names the option and its
// figure, and validation stays off (reversed orders go unreported) while the locks themselves
// still work.
void check_exhaustion(table_size table, const char* option, std::uint32_t limit,
                      void (*take)(lock_list&)) {
    tiny_tables tables(table, limit);
    capture cap;
    auto locks = make_locks();
    take(locks);

    REQUIRE(cap.kinds() == "table_exhausted");
    const auto r = cap.at(0);
    INFO("text:\n", r.text);
    CHECK(r.title == std::string("BUG: ") + option + " too low!");
    CHECK(contains(r.text, std::string("FENCEDEP_OPTIONS=") + option + "="));
    CHECK(contains(r.text, std::to_string(limit)));
    CHECK_FALSE(fencedep::enabled());

    for (std::size_t i = 0; i + 1 < locks.size(); ++i)
        engine_test::lock_unlock_2(*locks[i + 1], *locks[i]);
    CHECK_FALSE(locks[0]->map().held_by_this_thread());
    CHECK(cap.kinds() == "table_exhausted");
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("max_classes exhausted") {
    check_exhaustion(&fencedep::detail::options::max_classes, "max_classes", 13, take_each);
}

TEST_CASE("max_edges exhausted") {
    check_exhaustion(&fencedep::detail::options::max_edges, "max_edges", 17, take_neighbours);
}

TEST_CASE("max_chains exhausted") {
    check_exhaustion(&fencedep::detail::options::max_chains, "max_chains", 19, take_each);
}

TEST_CASE("the tables in force before are back after a case with tiny ones") {
    const auto before = fencedep::detail::current_options().max_classes;
    {
        tiny_tables tables(&fencedep::detail::options::max_classes, 2);
    }
    capture cap;
    auto locks = make_locks();
    take_neighbours(locks);
    CHECK(fencedep::enabled());
    CHECK(cap.kinds() == "");
    CHECK(fencedep::detail::current_options().max_classes == before);
}

}  // TEST_SUITE
