// SPDX-License-Identifier: MIT
// The out-of-line halves of fencedep::mutex and fencedep::spinlock.
#include <sched.h>

#include <fencedep/mutex.h>

namespace fencedep::detail {

// lock(), try_lock() and unlock() are always inlined into the user's code, so the return address
// of these calls is the user's acquire site: the "at:" of held-lock lines.
void on_lock(lock_map& map, unsigned subclass) noexcept {
    map.acquire(lock_map::acquisition{subclass, false, __builtin_return_address(0)});
}

void on_trylock(lock_map& map) noexcept {
    map.acquire(lock_map::acquisition{0, true, __builtin_return_address(0)});
}

void on_unlock(lock_map& map) noexcept {
    map.release(__builtin_return_address(0));
}

void raw_spinlock::lock_contended() noexcept {
    // Spin on a plain load (no cache-line ping-pong), and yield after a while: the holder may be
    // preempted, and on a machine with fewer cores than threads pure spinning would starve it.
    for (unsigned spins = 0;; ++spins) {
        if (try_lock())
            return;
        if (spins >= 64) {
            sched_yield();
        } else {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
}

}  // namespace fencedep::detail
