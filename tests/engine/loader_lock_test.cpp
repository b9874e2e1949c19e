// SPDX-License-Identifier: MIT
// The engine and the dynamic linker: a library constructor takes a fencedep lock (inside dlopen,
// under the loader's lock) while another thread registers classes. Naming a class by its key's
// symbol once took the loader's lock under the engine's lock: both threads hung.
#include <dlfcn.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "../watchdog.h"
#include "capture.h"

using engine_test::capture;

namespace {
// Unnamed locks get their class names from their keys' symbols. So many keys reach past the end
// of the executable's file into .bss, which only the loader's own tables (dladdr) used to cover.
std::array<fencedep::lock_class_key, 4096> unnamed_keys;
}  // namespace

TEST_CASE("a library constructor locks while another thread registers classes: no deadlock") {
    const char* const path = std::getenv("LOADER_LOCK_LIBRARY");
    REQUIRE(path != nullptr);
    capture cap;
    const fencedep::testing::watchdog guard(std::chrono::seconds(30), "loader_lock_test");
    std::atomic<bool> stop{false};
    std::atomic<unsigned> registered{0};
    std::thread registering([&] {
        for (std::size_t i = 0; i < unnamed_keys.size() && !stop.load(); ++i) {
            fencedep::lock_map lock(nullptr, unnamed_keys[i]);
            lock.acquire();
            lock.release();
            registered.fetch_add(1);
        }
    });
    int loads = 0;
    for (; loads < 500 && registered.load() < unnamed_keys.size(); ++loads) {
        void* const library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        REQUIRE(library != nullptr);
        REQUIRE(dlclose(library) == 0);
    }
    stop.store(true);
    registering.join();
    CHECK(loads > 0);
    CHECK(registered.load() > 0);
    CHECK(cap.kinds() == "");
    // The names came from the keys' symbols, outside the engine lock.
    fencedep::lock_map last(nullptr, unnamed_keys.back());
    last.acquire();
    last.acquire();  // recursion, to see the class's name in a report
    last.release();
    last.release();
    REQUIRE(cap.kinds() == "recursive_locking");
    CHECK(engine_test::contains(cap.at(0).classes.at(0), "unnamed_keys"));
}
