// SPDX-License-Identifier: MIT
// Instrumented locks: fencedep::mutex, spinlock, recursive_mutex, timed_mutex,
// recursive_timed_mutex, and the reader/writer locks shared_mutex, shared_timed_mutex and rwlock
// (condition_variable.h has the condition variable).
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <type_traits>

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

// A reader-preferring reader/writer spinlock: a reader waits only while a writer holds the lock,
// never for one that is waiting, so a reader that already holds it (or holds something a writer
// needs) can always read again. A waiting writer leaves no trace in the state: it spins, and
// yields, until no one holds the lock; readers that keep overlapping can starve it, which is the
// price of that guarantee (the kernel's rwlock_t makes the same trade in interrupt context).
class FENCEDEP_API raw_rwlock {
public:
    FENCEDEP_ALWAYS_INLINE bool try_lock() noexcept {
        std::uint32_t unheld = 0;
        return state_.load(std::memory_order_relaxed) == 0 &&
               state_.compare_exchange_strong(unheld, writer, std::memory_order_acquire, std::memory_order_relaxed);
    }
    FENCEDEP_ALWAYS_INLINE void lock() noexcept {
        if (!try_lock())
            lock_contended();
    }
    // While a writer holds the lock no reader can enter (they only enter a state without the
    // writer bit), so the state is exactly `writer` here and a store suffices.
    FENCEDEP_ALWAYS_INLINE void unlock() noexcept { state_.store(0, std::memory_order_release); }

    // Fails only while a writer holds the lock.
    FENCEDEP_ALWAYS_INLINE bool try_lock_shared() noexcept {
        std::uint32_t state = state_.load(std::memory_order_relaxed);
        while ((state & writer) == 0)
            if (state_.compare_exchange_weak(state, state + reader, std::memory_order_acquire,
                                             std::memory_order_relaxed))
                return true;
        return false;
    }
    FENCEDEP_ALWAYS_INLINE void lock_shared() noexcept {
        if (!try_lock_shared())
            lock_shared_contended();
    }
    // Release: the next writer's acquiring compare-exchange reads the count this leaves (or a
    // later reader's decrement of it, which continues the release sequence), so every reader's
    // reads happen before that writer's writes.
    FENCEDEP_ALWAYS_INLINE void unlock_shared() noexcept { state_.fetch_sub(reader, std::memory_order_release); }

private:
    static constexpr std::uint32_t writer = 1;  // a writer holds the lock
    static constexpr std::uint32_t reader = 2;  // the unit of the reader count, above the writer bit

    void lock_contended() noexcept;
    void lock_shared_contended() noexcept;
    std::atomic<std::uint32_t> state_{0};
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

// A reader/writer raw lock: its read side, and a timed read side.
template <class Raw>
concept shared_raw_lock = requires(Raw& raw) {
    raw.lock_shared();
    raw.try_lock_shared();
    raw.unlock_shared();
};
template <class Raw>
concept timed_shared_raw_lock = requires(Raw& raw, std::chrono::steady_clock::time_point deadline) {
    raw.try_lock_shared_until(deadline);
};

// How the readers of a raw lock hold it (lock_kind). A reader of std::shared_mutex is a
// non-recursive reader: the standard leaves the scheduling policy to the implementation, which
// may queue a new reader behind a waiting writer (libc++'s does: a waiting writer bars new
// readers), and then the reader waits for the writer, which waits for the readers already in.
// raw_rwlock never makes a reader wait for a waiting writer, so its readers are recursive readers.
template <class Raw>
inline constexpr lock_kind reader_kind = lock_kind::read;
template <>
inline constexpr lock_kind reader_kind<raw_rwlock> = lock_kind::recursive_read;

// The instrumented wrapper behind every fencedep lock type: validation first, then the real lock.
// The lock functions are always inlined, so the return address that lock_map records as the
// acquire site ("at:" in reports) lies in the user's function. Over a reader/writer raw lock it
// also has the read side: lock_shared(), try_lock_shared(), unlock_shared() (and the timed
// try_lock_shared_for/_until over a timed one), each recorded as reader_kind<Raw>.
template <class Raw, class Ownership = exclusive_ownership>
class basic_lock {
    // Readers share the lock: there is no one owner whose levels a recursive lock could count.
    static_assert(!shared_raw_lock<Raw> || std::is_same_v<Ownership, exclusive_ownership>);

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
        record(lock_kind::write, subclass, false);
        raw_.lock();
        owner_.locked();
    }

    FENCEDEP_ALWAYS_INLINE bool try_lock() {
        if (owner_.relock())
            return true;
        if (!raw_.try_lock())
            return false;
        owner_.locked();
        record(lock_kind::write, 0, true);
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
        return try_lock_waiting(lock_kind::write, [&] { return raw_.try_lock_for(timeout); });
    }
    template <class Clock, class Duration>
        requires timed_raw_lock<Raw>
    FENCEDEP_ALWAYS_INLINE bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        if (deadline <= Clock::now())
            return try_lock();
        return try_lock_waiting(lock_kind::write, [&] { return raw_.try_lock_until(deadline); });
    }

    FENCEDEP_ALWAYS_INLINE void unlock() {
        const unlock_outcome outcome = owner_.unlocking();
        if (outcome == unlock_outcome::nested)
            return;
        map_.release();
        if (outcome == unlock_outcome::outermost)
            raw_.unlock();
    }

    // The read side: as lock(), lock_nested(), try_lock() and the timed calls above, for a reader.
    FENCEDEP_ALWAYS_INLINE void lock_shared()
        requires shared_raw_lock<Raw>
    {
        lock_shared_nested(0);
    }
    FENCEDEP_ALWAYS_INLINE void lock_shared_nested(unsigned subclass)
        requires shared_raw_lock<Raw>
    {
        record(reader_kind<Raw>, subclass, false);
        raw_.lock_shared();
    }
    FENCEDEP_ALWAYS_INLINE bool try_lock_shared()
        requires shared_raw_lock<Raw>
    {
        if (!raw_.try_lock_shared())
            return false;
        record(reader_kind<Raw>, 0, true);
        return true;
    }
    template <class Rep, class Period>
        requires timed_shared_raw_lock<Raw>
    FENCEDEP_ALWAYS_INLINE bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& timeout) {
        if (timeout <= timeout.zero())
            return try_lock_shared();
        return try_lock_waiting(reader_kind<Raw>, [&] { return raw_.try_lock_shared_for(timeout); });
    }
    template <class Clock, class Duration>
        requires timed_shared_raw_lock<Raw>
    FENCEDEP_ALWAYS_INLINE bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        if (deadline <= Clock::now())
            return try_lock_shared();
        return try_lock_waiting(reader_kind<Raw>, [&] { return raw_.try_lock_shared_until(deadline); });
    }
    FENCEDEP_ALWAYS_INLINE void unlock_shared()
        requires shared_raw_lock<Raw>
    {
        map_.release();
        raw_.unlock_shared();
    }

    // The pseudo-lock that carries this lock's class; use it for assertions or annotations.
    lock_map& map() noexcept { return map_; }
    const lock_map& map() const noexcept { return map_; }

private:
    // condition_variable waits on raw_ itself, as std::condition_variable needs a std::mutex.
    friend class fencedep::condition_variable;

    // Tells the validator of this thread's acquisition: a blocking one before it blocks, a
    // trylock once it succeeded. Inlined, so the return address the lock_map takes is the
    // user's. `kind` and `trylock` are constants at every call: this is one gate test and, when
    // validation is on, one call with the arguments in registers.
    FENCEDEP_ALWAYS_INLINE void record(lock_kind kind, unsigned subclass, bool trylock) {
        switch (kind) {
        case lock_kind::write:
            return trylock ? map_.try_acquire(subclass) : map_.acquire(subclass);
        case lock_kind::read:
            return trylock ? map_.try_acquire_read(subclass) : map_.acquire_read(subclass);
        case lock_kind::recursive_read:
            return trylock ? map_.try_acquire_recursive_read(subclass) : map_.acquire_recursive_read(subclass);
        }
    }

    // For a reader, owner_ is exclusive_ownership (see the static_assert), whose relock() and
    // locked() do nothing.
    template <class Wait>
    FENCEDEP_ALWAYS_INLINE bool try_lock_waiting(lock_kind kind, Wait wait) {
        if (owner_.relock())
            return true;
        // The undo must match the acquisition even if validation is switched in between.
        const bool validated = enabled();
        if (validated)
            record(kind, 0, false);
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

// ---------------------------------------------------------------------------------------------
// The reader/writer locks
//
// Each has the calls of mutex above for its write side (lock, lock_nested, try_lock, unlock,
// validated as mutex's are) and the read side of std::shared_mutex: lock_shared, try_lock_shared
// and unlock_shared, with lock_shared_nested(subclass) beside lock_shared(). So they work with
// std::shared_lock as well as with std::lock_guard, std::unique_lock and std::scoped_lock.
// Classes, keys, names and subclasses are as for mutex; a lock's readers and writers are one
// class.
//
//   fencedep::shared_mutex table_lock{"table_lock"};
//   std::shared_lock read(table_lock);   // a reader
//   std::unique_lock write(table_lock);  // a writer
//
// What matters to the validator is whether a reader can wait for a writer that is only waiting
// (lock_kind in lockdep.h): a writer blocks everyone; a reader blocks writers; and a reader that
// queues behind a waiting writer is also blocked by the readers that writer waits for.
//
// shared_mutex        wraps std::shared_mutex. Its readers are non-recursive readers (lockdep's
//                     rwsem readers): the standard leaves it to the implementation whether a new
//                     reader may pass a waiting writer, and where it may not (libc++), a thread
//                     that reads a lock another reader holds waits for a writer that waits for
//                     that reader.
//                     So against other readers a reader behaves like a lock: reading a class this
//                     thread already holds (for reading or writing) is recursive_locking, and
//                     "read S, then take M" in one thread against "hold M, then read S" in another
//                     is a circular_dependency (a writer of S waiting between the two closes it).
// shared_timed_mutex  wraps std::shared_timed_mutex: shared_mutex with the timed calls of
//                     timed_mutex on both sides (try_lock_for/_until, try_lock_shared_for/_until).
//                     A timed attempt with time left to wait is validated as the blocking call,
//                     before waiting, and taken back without a trace on a timeout; with no time
//                     left it is a trylock.
// rwlock              a reader/writer spinlock that prefers readers: a reader waits only while a
//                     writer holds the lock, never for one that is waiting (writers may starve
//                     while readers keep overlapping). Its readers are recursive readers (lockdep's
//                     rwlock_t readers): a thread may read a class it already reads (the same
//                     instance or another), and a reader's cycles are reported only when a writer
//                     makes them real: "read R, then take M" against "hold M, then read R" is no
//                     deadlock (the second read never waits while R is only read), while "hold M,
//                     then write R" closes a cycle. Writing a class held for reading, or reading
//                     one held for writing, is recursive_locking.
//
// The read-side calls:
//   lock_shared(), lock_shared_nested(n)   validated before the thread waits: recursive_locking,
//                     circular_dependency (only for cycles that can deadlock given which
//                     acquisitions on them are reads), invalid_subclass for n > 7.
//   try_lock_shared()  a trylock: recorded once it succeeded, never validated.
//   try_lock_shared_for(), try_lock_shared_until()   (shared_timed_mutex) as above.
//   unlock_shared()    bad_unlock_balance when this thread does not hold the lock.
// With fencedep off, each costs one relaxed atomic load on top of the raw lock's call.
// ---------------------------------------------------------------------------------------------
using shared_mutex = detail::basic_lock<std::shared_mutex>;
using shared_timed_mutex = detail::basic_lock<std::shared_timed_mutex>;
using rwlock = detail::basic_lock<detail::raw_rwlock>;

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
