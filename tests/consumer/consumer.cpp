// SPDX-License-Identifier: MIT
// A program built against fencedep from outside its build: through CMake's find_package, through
// pkg-config, and as a meson subproject (tests/consumer/consumer_test.py). It takes two locks in
// ABBA order on one thread, so with FENCEDEP=1 it prints a splat and exits 66.
#include <cstdio>
#include <mutex>

#include <fencedep/fencedep.h>

int main() {
    fencedep::mutex a{"consumer_a"};
    fencedep::mutex b{"consumer_b"};
    {
        std::lock_guard<fencedep::mutex> first(a);
        std::lock_guard<fencedep::mutex> second(b);
    }
    {
        std::lock_guard<fencedep::mutex> first(b);
        std::lock_guard<fencedep::mutex> second(a);
    }
    std::printf("fencedep %s %s\n", FENCEDEP_VERSION, fencedep::enabled() ? "enabled" : "disabled");
    return 0;
}
