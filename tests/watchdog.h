// SPDX-License-Identifier: MIT
// For tests of hangs: a deadlock cannot be returned from, so a watchdog ends the test instead.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace fencedep::testing {

// Ends the process with a failure and `what` on stderr if it is still alive `limit` after the
// watchdog was made; destroying it in time calls the watch off.
class watchdog {
public:
    watchdog(std::chrono::seconds limit, const char* what)
        : thread_([this, limit, what] {
              std::unique_lock lock(mutex_);
              if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
                  std::fprintf(stderr, "%s: deadlock (no progress within the time limit)\n", what);
                  std::_Exit(EXIT_FAILURE);
              }
          }) {}
    ~watchdog() {
        {
            const std::lock_guard lock(mutex_);
            done_ = true;
        }
        done_cv_.notify_one();
        thread_.join();
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

private:
    std::mutex mutex_;
    std::condition_variable done_cv_;
    bool done_ = false;
    std::thread thread_;
};

}  // namespace fencedep::testing
