// SPDX-License-Identifier: MIT
// Instrumented locks: fencedep::mutex (sleeping) and fencedep::spinlock (busy-waiting).
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <atomic>
#include <mutex>

#include <fencedep/lockdep.h>

namespace fencedep {

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

// The instrumented wrapper shared by mutex and spinlock: validation first, then the real lock.
// The lock functions are always inlined, so the return address that lock_map records as the
// acquire site ("at:" in reports) lies in the user's function.
template <class Raw>
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
        if (enabled())
            map_.acquire(subclass);
        raw_.lock();
    }

    FENCEDEP_ALWAYS_INLINE bool try_lock() {
        if (!raw_.try_lock())
            return false;
        if (enabled())
            map_.try_acquire();
        return true;
    }

    FENCEDEP_ALWAYS_INLINE void unlock() {
        if (enabled())
            map_.release();
        raw_.unlock();
    }

    // The pseudo-lock that carries this lock's class; use it for assertions or annotations.
    lock_map& map() noexcept { return map_; }
    const lock_map& map() const noexcept { return map_; }

private:
    lock_map map_;
    Raw raw_;
};
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// fencedep::mutex and fencedep::spinlock
//
// Lockable (lock, unlock, try_lock), so they work with std::lock_guard, std::unique_lock and
// std::scoped_lock. The class is the construction site unless a lock_class_key is given:
//
//   struct device { fencedep::mutex lock{"dev->lock"}; };   // all devices share one class
//
// lock() and lock_nested() validate before blocking, so an ABBA between two threads is reported
// before the program hangs. What is checked and reported is listed at lock_map. With fencedep
// off, each call costs one relaxed atomic load on top of the raw lock.
// mutex wraps std::mutex; spinlock busy-waits, and is what fences use, as the kernel's do.
// (They are aliases rather than derived classes so that the default argument that names the
// construction site is evaluated at the user's declaration, not at an inheriting constructor.)
// ---------------------------------------------------------------------------------------------
using mutex = detail::basic_lock<std::mutex>;
using spinlock = detail::basic_lock<detail::raw_spinlock>;

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
