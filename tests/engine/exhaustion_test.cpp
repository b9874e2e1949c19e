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

// Locks of distinct classes (explicit keys, so that one loop can make many).
std::vector<std::unique_ptr<fencedep::spinlock>> make_locks() {
    std::vector<std::unique_ptr<fencedep::spinlock>> locks;
    for (auto& key : keys)
        locks.push_back(std::make_unique<fencedep::spinlock>("exhaust", key));
    return locks;
}

// Runs the case with tiny tables, and gives the next case the options it started with.
class tiny_tables {
public:
    explicit tiny_tables(void (*shrink)(fencedep::detail::options&))
        : saved_(fencedep::detail::current_options()) {
        auto opts = saved_;
        opts.enabled = true;
        shrink(opts);
        fencedep::detail::reconfigure(opts);
    }
    ~tiny_tables() { fencedep::detail::reconfigure(saved_); }
    tiny_tables(const tiny_tables&) = delete;
    tiny_tables& operator=(const tiny_tables&) = delete;

private:
    fencedep::detail::options saved_;
};

// After the table filled up: exactly one report, which names the option and its figure, and
// validation stays off (reversed orders go unreported) while the locks themselves still work.
void check_exhausted(const capture& cap, const char* option, std::uint32_t limit,
                     std::vector<std::unique_ptr<fencedep::spinlock>>& locks) {
    REQUIRE(cap.kinds() == "table_exhausted");
    const auto r = cap.at(0);
    INFO("text:\n", r.text);
    CHECK(r.title == std::string("BUG: ") + option + " too low!");
    CHECK(contains(r.text, std::string("FENCEDEP_OPTIONS=") + option + "="));
    CHECK(contains(r.text, std::to_string(limit)));
    CHECK_FALSE(fencedep::enabled());

    for (std::size_t i = 0; i + 1 < locks.size(); ++i) {
        locks[i + 1]->lock();
        locks[i]->lock();
        locks[i]->unlock();
        locks[i + 1]->unlock();
    }
    CHECK_FALSE(locks[0]->map().held_by_this_thread());
    CHECK(cap.kinds() == "table_exhausted");
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("max_classes exhausted") {
    constexpr std::uint32_t limit = 13;
    tiny_tables tables([](fencedep::detail::options& o) { o.max_classes = limit; });
    capture cap;
    auto locks = make_locks();
    for (auto& lock : locks) {
        lock->lock();
        lock->unlock();
    }
    check_exhausted(cap, "max_classes", limit, locks);
}

TEST_CASE("max_edges exhausted") {
    constexpr std::uint32_t limit = 17;
    tiny_tables tables([](fencedep::detail::options& o) { o.max_edges = limit; });
    capture cap;
    auto locks = make_locks();
    for (std::size_t i = 0; i + 1 < locks.size(); ++i)
        engine_test::lock_unlock_2(*locks[i], *locks[i + 1]);
    check_exhausted(cap, "max_edges", limit, locks);
}

TEST_CASE("max_chains exhausted") {
    constexpr std::uint32_t limit = 19;
    tiny_tables tables([](fencedep::detail::options& o) { o.max_chains = limit; });
    capture cap;
    auto locks = make_locks();
    for (auto& lock : locks) {
        lock->lock();
        lock->unlock();
    }
    check_exhausted(cap, "max_chains", limit, locks);
}

TEST_CASE("the tables in force before are back after a case with tiny ones") {
    const auto before = fencedep::detail::current_options().max_classes;
    {
        tiny_tables tables([](fencedep::detail::options& o) { o.max_classes = 2; });
    }
    capture cap;
    auto locks = make_locks();
    for (std::size_t i = 0; i + 1 < locks.size(); ++i)
        engine_test::lock_unlock_2(*locks[i], *locks[i + 1]);
    CHECK(fencedep::enabled());
    CHECK(cap.kinds() == "");
    CHECK(fencedep::detail::current_options().max_classes == before);
}

}  // TEST_SUITE
