// SPDX-License-Identifier: MIT
// ABBA: two code paths take the same two locks in opposite orders. Nothing hangs in this run,
// because the paths never overlap in time, but they can deadlock when they do: with FENCEDEP=1
// fencedep prints the "possible circular locking dependency" splat, with both stacks.
#include <mutex>

#include <fencedep/fencedep.h>

namespace {

fencedep::mutex config_lock("config_lock");
fencedep::mutex stats_lock("stats_lock");
int config_version = 0;
int reloads = 0;

// Path 1: reloading the configuration updates the statistics while holding the config lock.
[[gnu::noinline]] void reload_config() {
    std::lock_guard<fencedep::mutex> config(config_lock);
    ++config_version;
    std::lock_guard<fencedep::mutex> stats(stats_lock);
    ++reloads;
}

// Path 2: a statistics dump reads the configuration version while holding the stats lock.
[[gnu::noinline]] int dump_stats() {
    std::lock_guard<fencedep::mutex> stats(stats_lock);
    std::lock_guard<fencedep::mutex> config(config_lock);
    return reloads + config_version;
}

}  // namespace

int main() {
    reload_config();  // records config_lock -> stats_lock
    dump_stats();     // stats_lock -> config_lock closes the cycle: splat
    return 0;
}
