// SPDX-License-Identifier: MIT
// The program bench/instructions counts under callgrind: DEPTH-1 locks held in order, then a
// lock/unlock pair of one more, ROUNDS times. Counting two runs that differ only in ROUNDS gives
// the instructions of one pair, free of start-up and of the first round's slow path.
// Usage: pair_loop raw|off|on DEPTH ROUNDS   (raw: std::mutex; off, on: fencedep::mutex)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <fencedep/fencedep.h>

namespace {

template <class Mutex>
[[gnu::noinline]] void run(std::vector<std::unique_ptr<Mutex>>& locks, long rounds) {
    const std::size_t depth = locks.size();
    for (std::size_t i = 0; i + 1 < depth; ++i)
        locks[i]->lock();
    Mutex& top = *locks.back();
    for (long r = 0; r < rounds; ++r) {
        top.lock();
        top.unlock();
    }
    for (std::size_t i = depth - 1; i-- > 0;)
        locks[i]->unlock();
}

}  // namespace

int main(int argc, char** argv) {
    const int depth = argc == 4 ? std::atoi(argv[2]) : 0;
    const long rounds = argc == 4 ? std::atol(argv[3]) : 0;
    if (depth < 1 || depth > 128 || rounds < 1) {
        std::fprintf(stderr, "usage: pair_loop raw|off|on DEPTH(1-128) ROUNDS\n");
        return 2;
    }
    if (std::strcmp(argv[1], "raw") == 0) {
        std::vector<std::unique_ptr<std::mutex>> locks;
        for (int i = 0; i < depth; ++i)
            locks.push_back(std::make_unique<std::mutex>());
        run(locks, rounds);
        return 0;
    }
    fencedep::enable(std::strcmp(argv[1], "on") == 0);
    // One class per lock: a key each.
    static fencedep::lock_class_key keys[128];
    std::vector<std::unique_ptr<fencedep::mutex>> locks;
    for (int i = 0; i < depth; ++i)
        locks.push_back(std::make_unique<fencedep::mutex>("pair_loop", keys[i]));
    run(locks, rounds);
    return fencedep::splat_count() == 0 ? 0 : 1;
}
