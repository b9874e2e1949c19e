// SPDX-License-Identifier: MIT
// The out-of-line half of fencedep::spinlock: waiting for a contended lock.
#include <sched.h>

#include <fencedep/mutex.h>

namespace fencedep::detail {

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
