// SPDX-License-Identifier: MIT
// Instrumented locks: fencedep::mutex, spinlock, recursive_mutex, timed_mutex and
// recursive_timed_mutex (condition_variable.h has the condition variable).
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <fencedep/lockdep.h>

namespace fencedep {

class condition_variable;

namespace detail {
// Test-and-test-and-set spinning with a yield once spinning has gone on for a while, so that
// a spinlock stays usable on an oversubscribed machine (tests on 2 cores).
class FENCEDEP_API raw_spinlock {
public:
    FENCEDEP_ALWAYS_INLINE bool try_lock() noexcept {
        return !locked_.load(std::memory_order_relaxed) &&
               !locked_.exchange(true, std::memory_order_acquire);
    }
    FENCEDEP_ALWAYS_INLINE void lock() noexcept {
        if (!try_lock())
            lock_contended();
    }
    FENCEDEP_ALWAYS_INLINE void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    void lock_contended() noexcept;
    std::atomic<bool> locked_{false};
};

// What an unlock() call gives up.
enum class unlock_outcome {
    nested,     // one level of a recursive lock: the lock stays held, the validator hears nothing
    outermost,  // the lock itself
    not_owner,  // a recursive lock this thread does not own: reported, and otherwise ignored
};

// Ownership of a plain lock: the raw lock is all the state there is.
struct exclusive_ownership {
    static constexpr bool relock() noexcept { return false; }
    static constexpr void locked() noexcept {}
    static constexpr unlock_outcome unlocking() noexcept { return unlock_outcome::outermost; }
};

// Ownership of a recursive lock, kept by the wrapper over a non-recursive raw lock rather than
// by std::recursive_mutex: the wrapper must know the owner anyway (only the outermost level is
// an event), and knowing it makes an unlock by another thread detectable and harmless instead of
// undefined.
class recursive_ownership {
public:
    // Whether the calling thread owns the lock already; if so, it now holds one level more.
    FENCEDEP_ALWAYS_INLINE bool relock() noexcept {
        if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id())
            return false;
        ++depth_;
        return true;
    }
    FENCEDEP_ALWAYS_INLINE void locked() noexcept {
        owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        depth_ = 1;
    }
    FENCEDEP_ALWAYS_INLINE unlock_outcome unlocking() noexcept {
        if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id())
            return unlock_outcome::not_owner;
        if (--depth_ > 0)
            return unlock_outcome::nested;
        owner_.store(std::thread::id(), std::memory_order_relaxed);
        return unlock_outcome::outermost;
    }

private:
    // Relaxed is enough: a thread finds its own id here only if it stored it itself, and it
    // clears it before unlocking the raw lock, whose release ordering covers depth_.
    std::atomic<std::thread::id> owner_{};
    unsigned long depth_ = 0;  // touched only by the owner
};

template <class Raw>
concept timed_raw_lock = requires(Raw& raw, std::chrono::steady_clock::time_point deadline) {
    raw.try_lock_until(deadline);
};

// The instrumented wrapper behind every fencedep lock type: validation first, then the real lock.
// The lock functions are always inlined, so the return address that lock_map records as the
// acquire site ("at:" in reports) lies in the user's function.
template <class Raw, class Ownership = exclusive_ownership>
class basic_lock {
public:
    explicit basic_lock(const char* name = nullptr,
                        source_location site = source_location::current()) noexcept
        : map_(name, site) {}
    explicit basic_lock(lock_class_key& key) noexcept : map_(nullptr, key) {}
    basic_lock(const char* name, lock_class_key& key) noexcept : map_(name, key) {}
    basic_lock(const basic_lock&) = delete;
    basic_lock& operator=(const basic_lock&) = delete;

    FENCEDEP_ALWAYS_INLINE void lock() { lock_nested(0); }

    // Takes the lock as subclass `subclass` (0-7) of its class: the kernel's *_nested, used to
    // teach the validator a legitimate parent-then-child order between locks of one class.
    FENCEDEP_ALWAYS_INLINE void lock_nested(unsigned subclass) {
        if (owner_.relock())
            return;
        if (enabled())
            map_.acquire(subclass);
        raw_.lock();
        owner_.locked();
    }

    FENCEDEP_ALWAYS_INLINE bool try_lock() {
        if (owner_.relock())
            return true;
        if (!raw_.try_lock())
            return false;
        owner_.locked();
        if (enabled())
            map_.try_acquire();
        return true;
    }

    // A timeout or deadline that has already passed cannot make the thread wait, so the call is
    // a try_lock(). Otherwise the thread may wait, which deadlocks as surely as lock() does while
    // the timeout lasts: the call is validated as lock() is, before waiting, and on a timeout the
    // acquisition is taken back, leaving the thread's held locks as if the call had not been
    // made (the edges it recorded, and any report, stay: the thread did wait in that order).
    template <class Rep, class Period>
        requires timed_raw_lock<Raw>
    FENCEDEP_ALWAYS_INLINE bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
        if (timeout <= timeout.zero())
            return try_lock();
        return try_lock_waiting([&] { return raw_.try_lock_for(timeout); });
    }
    template <class Clock, class Duration>
        requires timed_raw_lock<Raw>
    FENCEDEP_ALWAYS_INLINE bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        if (deadline <= Clock::now())
            return try_lock();
        return try_lock_waiting([&] { return raw_.try_lock_until(deadline); });
    }

    FENCEDEP_ALWAYS_INLINE void unlock() {
        const unlock_outcome outcome = owner_.unlocking();
        if (outcome == unlock_outcome::nested)
            return;
        if (enabled())
            map_.release();
        if (outcome == unlock_outcome::outermost)
            raw_.unlock();
    }

    // The pseudo-lock that carries this lock's class; use it for assertions or annotations.
    lock_map& map() noexcept { return map_; }
    const lock_map& map() const noexcept { return map_; }

private:
    // condition_variable waits on raw_ itself, as std::condition_variable needs a std::mutex.
    friend class fencedep::condition_variable;

    template <class Wait>
    FENCEDEP_ALWAYS_INLINE bool try_lock_waiting(Wait wait) {
        if (owner_.relock())
            return true;
        // The undo must match the acquisition even if validation is switched in between.
        const bool validated = enabled();
        if (validated)
            map_.acquire();
        if (!wait()) {
            if (validated)
                map_.release();
            return false;
        }
        owner_.locked();
        return true;
    }

    lock_map map_;
    Raw raw_;
    [[no_unique_address]] Ownership owner_;
};
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The lock types
//
// Each is a drop-in for its std:: namesake: Lockable (lock, unlock, try_lock), so they work with
// std::lock_guard, std::unique_lock and std::scoped_lock, and the timed ones are TimedLockable
// (try_lock_for, try_lock_until). The class is the construction site unless a lock_class_key is
// given:
//
//   struct device { fencedep::mutex lock{"dev->lock"}; };   // all devices share one class
//
// mutex             wraps std::mutex.
// spinlock          busy-waits; it is what fences use, as the kernel's do.
// timed_mutex       wraps std::timed_mutex. try_lock_for / try_lock_until with a timeout still
//                   to run are validated as lock() is (they may wait, and a wait in a cycle is a
//                   deadlock until the timeout); with a timeout of zero or less, or a deadline
//                   already passed, they are try_lock(): not validated, as they cannot wait. A
//                   timed-out attempt is taken back: it leaves no held lock behind and its undo
//                   is no bad unlock, as with the kernel's down_timeout and mutex_lock_killable,
//                   annotated as full acquisitions and released on failure.
// recursive_mutex   lockdep-style recursion: the owner may lock the same instance again (lock,
//                   try_lock, and the timed calls succeed at once and count one level); only the
//                   outermost lock and unlock are events, so re-locking an instance is never
//                   reported, while taking a second instance of the class while holding the
//                   first is recursive_locking (use lock_nested or keys, as with mutex).
//                   unlock() by a thread that does not own the lock (std::recursive_mutex leaves
//                   this undefined) is reported as bad_unlock_balance and otherwise does
//                   nothing: the owner keeps the lock and its depth.
// recursive_timed_mutex   both of the above.
//
// lock(), lock_nested() and the waiting timed calls validate before blocking, so an ABBA between
// two threads is reported before the program hangs. What is checked and reported is listed at
// lock_map. With fencedep off, each call costs one relaxed atomic load on top of the raw lock;
// the recursive types also keep their owner and depth, as std::recursive_mutex does itself.
// (They are aliases rather than derived classes so that the default argument that names the
// construction site is evaluated at the user's declaration, not at an inheriting constructor.)
// ---------------------------------------------------------------------------------------------
using mutex = detail::basic_lock<std::mutex>;
using spinlock = detail::basic_lock<detail::raw_spinlock>;
using timed_mutex = detail::basic_lock<std::timed_mutex>;
using recursive_mutex = detail::basic_lock<std::mutex, detail::recursive_ownership>;
using recursive_timed_mutex = detail::basic_lock<std::timed_mutex, detail::recursive_ownership>;

// shared_mutex and shared_timed_mutex belong here and come with the read/write issue. They will
// be basic_lock over std::shared_mutex / std::shared_timed_mutex, with lock_shared,
// try_lock_shared, unlock_shared (and try_lock_shared_for / _until, taken back on a timeout as
// above) beside the exclusive calls. What they need first: read acquisitions in lock_map (a
// std::shared_mutex reader is lockdep's non-recursive reader, read=1, as a waiting writer can
// block it), the read kind mixed into the chain key, and lockdep's read rules in the engine
// (which edges count in the cycle search, and which read-after-read is recursive locking).

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
