// SPDX-License-Identifier: MIT
// fork() while other threads are inside the validator's slow paths: the child must not hang.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "capture.h"

using engine_test::capture;

namespace {

// Waits for `child` for up to `limit`; kills it if it is still running. Returns its exit status,
// or -1 if it had to be killed (it hung).
int wait_bounded(pid_t child, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            return -1;
        }
        std::this_thread::yield();
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("a child forked while another thread is in the slow path can still validate") {
    capture cap;
    // Each release of a lock that is not held takes the engine's lock (the report is made once,
    // then only looked up), so this thread is inside the engine's lock much of the time.
    std::atomic<bool> stop{false};
    std::thread busy([&] {
        fencedep::lock_map never_taken{"fork: never taken"};
        while (!stop.load(std::memory_order_relaxed))
            never_taken.release();
    });

    REQUIRE(cap.wait_for(1, std::chrono::seconds(60)));  // its one report is made

    constexpr int forks = 100;
    int hung = 0;
    int failed = 0;
    for (int i = 0; i < forks; ++i) {
        const pid_t child = fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // A class never seen before: registering it and its edges needs the engine's lock,
            // the depot's (a new stack) and, for the report, the symbolizer's and the handler's.
            const std::string name_a = "fork child a " + std::to_string(i);
            const std::string name_b = "fork child b " + std::to_string(i);
            fencedep::lock_map a{name_a.c_str()};
            fencedep::lock_map b{name_b.c_str()};
            a.acquire();
            b.acquire();
            b.release();
            a.release();
            b.acquire();
            a.acquire();  // a circular report: goes through every lock of the report path
            a.release();
            b.release();
            _exit(fencedep::splat_count() == 2 ? 0 : 1);  // the busy thread's report, and this one
        }
        const int status = wait_bounded(child, std::chrono::seconds(20));
        hung += status == -1;
        failed += status > 0;
    }
    stop = true;
    busy.join();
    CHECK(hung == 0);
    CHECK(failed == 0);
    CHECK(cap.kinds() == "bad_unlock_balance");
}

}  // TEST_SUITE
