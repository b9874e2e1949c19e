// SPDX-License-Identifier: MIT
// The out-of-line halves of fencedep::spinlock and fencedep::rwlock: waiting for a contended lock.
#include <sched.h>

#include <fencedep/mutex.h>

namespace fencedep::detail {
namespace {

// Retries `try_take` until it succeeds. Each try starts with a plain load (no cache-line
// ping-pong while the lock is held), and the thread yields once spinning has gone on for a
// while: the holder may be preempted, and on a machine with fewer cores than threads pure
// spinning would starve it. Nothing sleeps, so no wake-up can be lost: every waiter keeps looking.
template <class Try>
void spin_until(Try try_take) noexcept {
    for (unsigned spins = 0; !try_take(); ++spins) {
        if (spins >= 64) {
            sched_yield();
        } else {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
}

}  // namespace

void raw_spinlock::lock_contended() noexcept {
    spin_until([this] { return try_lock(); });
}

void raw_rwlock::lock_contended() noexcept {
    spin_until([this] { return try_lock(); });
}

void raw_rwlock::lock_shared_contended() noexcept {
    spin_until([this] { return try_lock_shared(); });
}

}  // namespace fencedep::detail
