// SPDX-License-Identifier: MIT
// Exit with threads still locking: run a program many times; every run must exit cleanly.
#include <doctest/doctest.h>

#include <string>

#include "../config/spawn.h"

TEST_CASE("threads that keep locking while main returns never crash the exit") {
    // About one exit in six crashed when the chain cache was freed by exit(); fifty runs make a
    // regression all but certain to show.
    for (int run = 0; run < 50; ++run) {
        const auto result = fencedep::testing::spawn({EXIT_RACE_PATH, "4"}, {{"FENCEDEP", "1"}});
        INFO("run ", run, ": ", result.err);
        REQUIRE(result.exit_code() == 0);
        CHECK(result.err.empty());
    }
}
