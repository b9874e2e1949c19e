// SPDX-License-Identifier: MIT
// The validator's memory at 100,000 classes (the target: at most 40 MiB resident for the whole
// process). Prints the resident set at start, with the program's keys and locks built, once
// fencedep is on with nothing registered, after registering 100,000 keyed classes, and after
// recording 100,000 edges between them, so that what is allocated up front and what grows with
// use show apart. Run with max_edges raised far past what it uses (meson's benchmark does), so
// that tables sized by the limit would show.
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include <fencedep/fencedep.h>

namespace {

constexpr std::uint32_t classes = 100000;
constexpr std::uint32_t edges = 100000;

double resident_mib() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("VmRSS:"))
            return std::stod(line.substr(6)) / 1024;
    return 0;
}

}  // namespace

int main() {
    std::printf("resident at start: %.1f MiB\n", resident_mib());
    auto keys = std::make_unique<fencedep::lock_class_key[]>(classes);
    std::deque<fencedep::lock_map> locks;
    for (std::uint32_t i = 0; i < classes; ++i)
        locks.emplace_back("memory bench", keys[i]);
    std::printf("resident with %u keys and locks built (the program's own memory): %.1f MiB\n", classes,
                resident_mib());
    fencedep::enable(true);
    std::printf("resident with fencedep on, no lock taken: %.1f MiB\n", resident_mib());
    for (auto& lock : locks) {
        lock.acquire();
        lock.release();
    }
    std::printf("resident after registering %u classes: %.1f MiB (target <= 40)\n", classes, resident_mib());
    // Edges in index order, so none closes a cycle.
    std::mt19937 random(1);
    for (std::uint32_t i = 0; i < edges; ++i) {
        std::uint32_t a = random() % classes;
        std::uint32_t b = random() % classes;
        if (a == b)
            continue;
        if (a > b)
            std::swap(a, b);
        locks[a].acquire();
        locks[b].acquire();
        locks[b].release();
        locks[a].release();
    }
    std::printf("resident after %u edges: %.1f MiB\n", edges, resident_mib());
    if (fencedep::splat_count() != 0) {
        std::printf("fencedep reported a splat: the tables are too small for the run\n");
        return 1;
    }
    return 0;
}
