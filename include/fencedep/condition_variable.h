// SPDX-License-Identifier: MIT
// fencedep::condition_variable: std::condition_variable for std::unique_lock<fencedep::mutex>.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <type_traits>
#include <utility>

#include <fencedep/lockdep.h>
#include <fencedep/mutex.h>

namespace fencedep {

// ---------------------------------------------------------------------------------------------
// fencedep::condition_variable
//
// std::condition_variable's interface, over std::unique_lock<fencedep::mutex>:
//
//   fencedep::mutex lock{"queue->lock"};
//   fencedep::condition_variable ready;
//   std::unique_lock guard(lock);
//   ready.wait(guard, [&] { return !queue.empty(); });
//
// To the validator a wait is what it is to the thread: a release of the mutex and, once woken,
// a blocking acquisition of it under every lock the thread still holds. So a lock held across a
// wait is ordered before the mutex, and a thread that takes the two in the other order closes
// a cycle, which is reported.
//
// The reacquisition is validated before the thread waits, not after it wakes: a thread whose
// reacquisition would deadlock may never wake, and nothing of fencedep runs inside
// std::condition_variable's wait. The thread does nothing else until the wait returns, so what
// is validated and recorded is the same either way; while it waits, its held locks already
// include the mutex again. The reacquisition is recorded as lock() records it, as subclass 0,
// whatever subclass the mutex was first taken with (the kernel's wait_event_lock_irq also
// relocks with a plain spin_lock). Its acquire site ("at:") is the caller of wait.
//
// Each wait of the predicate forms is one release and reacquisition; the predicate runs with the
// mutex held, as in std::condition_variable. notify_one and notify_all are not events.
// Requires, for every wait: `lock` owns its mutex, taken by the calling thread (as for
// std::condition_variable; otherwise the release is a bad_unlock_balance report and the wait is
// undefined). If a wait throws (a user clock's now() may), the mutex is held again on exit.
// With fencedep off, a wait costs one relaxed atomic load on top of std::condition_variable's.
// ---------------------------------------------------------------------------------------------
class condition_variable {
public:
    condition_variable() = default;

    void notify_one() noexcept { cv_.notify_one(); }
    void notify_all() noexcept { cv_.notify_all(); }

    FENCEDEP_ALWAYS_INLINE void wait(std::unique_lock<mutex>& lock) {
        with_raw_lock(lock, [&](std::unique_lock<std::mutex>& raw) { cv_.wait(raw); });
    }
    template <class Predicate>
    FENCEDEP_ALWAYS_INLINE void wait(std::unique_lock<mutex>& lock, Predicate stop_waiting) {
        while (!stop_waiting())
            wait(lock);
    }

    template <class Clock, class Duration>
    FENCEDEP_ALWAYS_INLINE std::cv_status wait_until(std::unique_lock<mutex>& lock,
                                                     const std::chrono::time_point<Clock, Duration>& deadline) {
        return with_raw_lock(lock, [&](std::unique_lock<std::mutex>& raw) { return cv_.wait_until(raw, deadline); });
    }
    template <class Clock, class Duration, class Predicate>
    FENCEDEP_ALWAYS_INLINE bool wait_until(std::unique_lock<mutex>& lock,
                                           const std::chrono::time_point<Clock, Duration>& deadline,
                                           Predicate stop_waiting) {
        while (!stop_waiting())
            if (wait_until(lock, deadline) == std::cv_status::timeout)
                return stop_waiting();
        return true;
    }

    template <class Rep, class Period>
    FENCEDEP_ALWAYS_INLINE std::cv_status wait_for(std::unique_lock<mutex>& lock,
                                                   const std::chrono::duration<Rep, Period>& timeout) {
        return with_raw_lock(lock, [&](std::unique_lock<std::mutex>& raw) { return cv_.wait_for(raw, timeout); });
    }
    // As in std::condition_variable: the timeout is turned into one deadline, which spurious
    // wake-ups do not move.
    template <class Rep, class Period, class Predicate>
    FENCEDEP_ALWAYS_INLINE bool wait_for(std::unique_lock<mutex>& lock, const std::chrono::duration<Rep, Period>& timeout,
                                         Predicate stop_waiting) {
        using clock = std::chrono::steady_clock;
        return wait_until(lock, clock::now() + std::chrono::ceil<clock::duration>(timeout), std::move(stop_waiting));
    }

private:
    // std::condition_variable waits on a std::unique_lock<std::mutex>: this one adopts the raw
    // mutex for the wait and gives it back still locked however the wait ends, since the caller's
    // std::unique_lock<fencedep::mutex> goes on owning it.
    struct raw_lock {
        explicit raw_lock(std::mutex& raw) : lock(raw, std::adopt_lock) {}
        ~raw_lock() { lock.release(); }
        raw_lock(const raw_lock&) = delete;
        raw_lock& operator=(const raw_lock&) = delete;
        std::unique_lock<std::mutex> lock;
    };

    template <class Wait>
    FENCEDEP_ALWAYS_INLINE std::invoke_result_t<Wait&, std::unique_lock<std::mutex>&> with_raw_lock(
        std::unique_lock<mutex>& lock, Wait wait) {
        mutex& m = *lock.mutex();
        if (enabled()) {
            m.map().release();
            about_to_wait();
            m.map().acquire();
        }
        raw_lock raw(m.raw_);
        return wait(raw.lock);
    }

    // Where the fence signalling annotations (a later issue) will hook in: there a wait becomes
    // a write acquisition and release of the signalling pseudo-lock, made here, with the mutex
    // released, so that a wait inside a signalling section is reported like a fence wait.
    static void about_to_wait() noexcept {}

    std::condition_variable cv_;
};

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
