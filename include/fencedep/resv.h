// SPDX-License-Identifier: MIT
// resv_lock: the reservation lock that guards a buffer's fences (the kernel's dma_resv_lock, a
// wound/wait mutex of one class), and the acquire context that locks several of them at once.
#pragma once

#include <fencedep/language.h>
#ifdef FENCEDEP_CXX20

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>

#include <fencedep/lockdep.h>

namespace fencedep {

class resv_lock;

// ---------------------------------------------------------------------------------------------
// resv_acquire_context (the kernel's ww_acquire_ctx)
//
// One thread's attempt to lock a set of reservation locks, in any order, without deadlocking
// against other threads doing the same: every context gets a ticket at construction, and when
// two contexts want each other's locks the younger one backs off (wait-die). Construct it before
// the first lock and destroy it after the last unlock, on one thread.
//
// Validation: the context is itself a lock (class `resv_acquire_context`) held from construction
// to destruction, and every resv_lock taken with it names it as nest_lock (lockdep.h), so that
// holding many reservation locks at once is no recursive locking. Two contexts held by one
// thread at once are (the kernel's "two_contexts" selftest): the second could wait for a lock the
// first holds.
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API resv_acquire_context {
public:
    resv_acquire_context() noexcept;
    ~resv_acquire_context();
    resv_acquire_context(const resv_acquire_context&) = delete;
    resv_acquire_context& operator=(const resv_acquire_context&) = delete;

    // Locks of this context held now.
    unsigned acquired() const noexcept { return acquired_; }

private:
    friend class resv_lock;
    lock_map map_;
    std::uint64_t ticket_;  // lower is older; the older context wins a conflict
    unsigned acquired_ = 0;
};

// ---------------------------------------------------------------------------------------------
// resv_lock (the kernel's dma_resv lock)
//
// Every resv_lock is one lock class, `resv_lock`, as every dma_resv shares reservation_ww_class:
// what matters for deadlocks is the rule that governs them all, which fencedep records at
// start-up (signalling.h, "Priming"): fences may be waited on while resv_locks are held, so a
// signalling section must never take one.
//
// Locking several: with a context, in any order; on -EDEADLK, unlock every lock of the context,
// take the contended one with lock_slow(), and start over with the rest. lock_all() does exactly
// that:
//
//   fencedep::resv_acquire_context ctx;
//   fencedep::resv_lock* bos[] = {&a.resv, &b.resv, &c.resv};
//   fencedep::resv_lock::lock_all(bos, ctx);
//   ... add fences to the buffers ...
//   for (auto* bo : bos) bo->unlock();
//
// Each call is validated before it blocks, like any fencedep lock.
// ---------------------------------------------------------------------------------------------
class FENCEDEP_API resv_lock {
public:
    resv_lock() noexcept;
    ~resv_lock() = default;
    resv_lock(const resv_lock&) = delete;
    resv_lock& operator=(const resv_lock&) = delete;

    // Locks with `ctx`. Returns 0 when locked; -EALREADY if `ctx` holds it already; -EDEADLK if
    // an older context holds it while `ctx` holds other locks: `ctx` must back off (unlock all
    // its locks, then lock_slow() this one). Blocks while a context that may not be made to
    // back off holds it.
    [[nodiscard]] int lock(resv_acquire_context& ctx) noexcept;
    // Locks with `ctx` after an -EDEADLK, when `ctx` holds no lock: waits, never backs off.
    void lock_slow(resv_acquire_context& ctx) noexcept;
    // Locks without a context, as a plain mutex (it can deadlock against anything else).
    void lock() noexcept;
    // Locks if free, without waiting; true when locked.
    [[nodiscard]] bool try_lock() noexcept;
    // Unlocks (whether locked with a context or not).
    void unlock() noexcept;

    // Locks every lock of `locks` (distinct, none held by `ctx`) with `ctx`, backing off and
    // starting over on -EDEADLK until all are held.
    static void lock_all(std::span<resv_lock* const> locks, resv_acquire_context& ctx) noexcept;

    lock_map& map() noexcept { return map_; }

private:
    int take(resv_acquire_context* ctx, bool may_back_off) noexcept;

    lock_map map_;
    std::mutex state_lock_;  // the real lock's state; never instrumented
    std::condition_variable released_;
    bool locked_ = false;
    resv_acquire_context* owner_ = nullptr;  // the context that holds it, if any
};

}  // namespace fencedep

#endif  // FENCEDEP_CXX20
