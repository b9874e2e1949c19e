// SPDX-License-Identifier: MIT
// A program whose threads keep taking fencedep locks while main returns and exit() runs the
// static destructors: nothing the lock path touches may be gone by then.
#include <array>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <fencedep/fencedep.h>

namespace {
constexpr std::size_t lock_count = 64;
std::array<fencedep::lock_class_key, lock_count> keys;

// Leaked on purpose: the locks must outlive the threads, which outlive main.
std::array<fencedep::lock_map*, lock_count>& locks() {
    static auto* all = [] {
        auto* made = new std::array<fencedep::lock_map*, lock_count>;
        for (std::size_t i = 0; i < lock_count; ++i)
            (*made)[i] = new fencedep::lock_map("exit race", keys[i]);
        return made;
    }();
    return *all;
}

[[noreturn]] void churn(unsigned seed) {
    auto& all = locks();
    for (unsigned round = seed;; ++round) {
        // Always the lower index first: no cycle, so no report, only chains (new ones on the slow
        // path at first, cached ones on the fast path later).
        const std::size_t first = (round * 7) % (lock_count - 1);
        const std::size_t second = first + 1 + (round * 13) % (lock_count - 1 - first);
        all[first]->acquire();
        all[second]->acquire();
        all[second]->release();
        all[first]->release();
    }
}
}  // namespace

int main(int argc, char** argv) {
    locks();
    const int threads = argc > 1 ? std::atoi(argv[1]) : 4;
    for (int i = 0; i < threads; ++i)
        std::thread(churn, static_cast<unsigned>(i) * 1000).detach();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return 0;
}
